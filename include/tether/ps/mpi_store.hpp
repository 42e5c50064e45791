#pragma once
/// \file
/// The parameter server under MPI (component tether::mpi): the last `servers` ranks hold the shards (shard s on
/// server s % servers) and serve them with a loop (ps/mpi/server.hpp); the other ranks are replicas
/// (ps/mpi/replica.hpp). Every rank runs the same program: `algo::downpour<comm::mpi>` is a server on the last
/// ranks (`opt.is_server()`: call `opt.serve()`, which returns when every replica finished or was lost) and a
/// replica elsewhere (`opt.step(...)`, `opt.finish(x)`). The store's messages travel on a duplicate of the
/// communicator, so they never mix with the program's own. Host memory only.
/// See docs/algorithms/downpour.md#the-store-and-its-placements.

#include <mpi.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <exception>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tether/comm/mpi.hpp"
#include "tether/core/checkpoint.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/core/view.hpp"
#include "tether/ps/concepts.hpp"
#include "tether/ps/mpi/replica.hpp"
#include "tether/ps/mpi/server.hpp"
#include "tether/ps/placement.hpp"
#include "tether/ps/stats.hpp"
#include "tether/ps/store_options.hpp"

namespace tether::ps {

/// One rank's handle on the MPI store: a server (serve()) or a replica (the ps::parameter_store members).
template <class Step, class Exec, class T>
class mpi_store {
  static_assert(std::same_as<typename Exec::memory_space, mem::host>,
                "tether::ps::mpi_store: the MPI placement keeps shards and buffers in host memory (see "
                "docs/algorithms/downpour.md#the-store-and-its-placements)");

 public:
  /// A push sends from the store's own double buffer while the replica goes on: the replica accrues into
  /// accumulator(), even with n_push = 1.
  static constexpr bool asynchronous_push = true;

  mpi_store() = default;
  mpi_store(std::unique_ptr<comm::mpi> channel, const Exec& exec, const Step& step, shard_layout layout, int servers,
            const store_options& o, double lease, T base_lr)
      : channel_(std::move(channel)), layout_(layout), lr_(base_lr) {
    const int replicas = channel_->size() - servers;
    const double timeout = channel_->opts().timeout;
    if (channel_->rank() >= replicas)
      server_ = std::make_unique<mpi_server<Step, Exec, T>>(*channel_, exec, step, layout, channel_->rank() - replicas,
                                                            servers, replicas, o, lease, timeout);
    else
      replica_ = std::make_unique<mpi_replica<T>>(*channel_, layout, servers, replicas, o, lease, timeout);
  }

  /// True on a server rank.
  [[nodiscard]] bool is_server() const noexcept { return server_ != nullptr; }
  /// The service loop (server ranks).
  void serve() { server().serve(); }

  [[nodiscard]] std::size_t size() const noexcept { return layout_.size(); }
  [[nodiscard]] shard_layout layout() const { return layout_; }

  // --- tether::shared_store --------------------------------------------------------------------------------
  void read(std::span<T> out) {
    check_size(out.size(), "read");
    fetch(out.data());
  }
  void accumulate(std::span<const T> in) {
    check_size(in.size(), "accumulate");
    push(in.data(), lr_);
  }
  /// Fetches into `read`, lets `compute(0, N)` fill `delta`, pushes it at the base rate (not atomic: other
  /// pushes may land between the fetch and this push, as in asynchronous EASGD's window center).
  template <class F>
  void exchange(std::span<T> read, std::span<T> delta, F&& compute) {
    check_size(read.size(), "exchange");
    check_size(delta.size(), "exchange");
    fetch(read.data());
    compute(std::size_t{0}, size());
    push(delta.data(), lr_);
  }
  void release() { replica().release(); }
  void close(std::span<T> out) {
    check_size(out.size(), "close");
    finish(out.data());
  }

  // --- ps::parameter_store ---------------------------------------------------------------------------------
  bool join(T* x) { return replica().join(x); }
  [[nodiscard]] T* accumulator() { return replica().accumulator(); }
  void push(const T* g, T lr) { replica().push(g, lr); }
  [[nodiscard]] const push_tally& tally() const {
    static const push_tally none{};
    return replica_ ? replica_->tally() : none;
  }
  void fetch(T* x) { replica().fetch(x); }
  [[nodiscard]] std::span<const std::uint64_t> versions() const noexcept {
    return replica_ ? replica_->versions() : std::span<const std::uint64_t>{};
  }
  void renew(std::uint64_t steps) { replica().renew(steps); }
  void stepped(std::uint64_t steps, std::uint64_t pushes) { replica().stepped(steps, pushes); }
  void finish(T* x) { replica().finish(x); }
  void abandon() {
    if (replica_) replica_->abandon();
  }
  [[nodiscard]] std::vector<replica_loss> losses() const {
    if (server_) return server_->losses();
    return replica_ ? replica_->losses() : std::vector<replica_loss>{};
  }
  [[nodiscard]] bool lost() const noexcept { return replica_ && replica_->lost(); }

  // --- checkpoints (algo::downpour::save/load) -------------------------------------------------------------

  using saved_shards = typename mpi_server<Step, Exec, T>::saved;
  using saved_replica = typename mpi_replica<T>::saved;

  /// A server rank reads and writes a shards' file; a replica its own.
  [[nodiscard]] bool holds_shards_file() const noexcept { return server_ != nullptr; }
  /// This server's shards' file for replica 0's checkpoint `path`.
  [[nodiscard]] std::string shards_path(const std::string& path) { return server().shards_path(path); }
  /// What this server's shards' files start with (set by downpour::serve()).
  void checkpoint_header(std::vector<unsigned char> h) { server().checkpoint_header(std::move(h)); }

  /// Collective save on a replica: the cut (mpi_replica::cut; the servers write their shards' files from
  /// serve()), then `write_own()`. A failed cut is a tether::error on every replica.
  template <class Header, class Own>
  void save_cut(std::uint64_t steps, const std::string& path, Header&&, Own&& write_own) {
    const std::uint64_t flags = replica().cut(steps, path);
    tether::detail::require((flags & mpi_wire::cut_replica_gone) == 0, "downpour::save(\"", path, "\"): a replica ",
                            "finished or was lost before every replica arrived: a checkpoint takes every replica");
    tether::detail::require((flags & mpi_wire::cut_steps_differ) == 0, "downpour::save(\"", path, "\"): the ",
                            "replicas are at different steps: every replica must save after the same step");
    tether::detail::require((flags & mpi_wire::cut_write_failed) == 0, "downpour::save(\"", path, "\"): a server ",
                            "rank could not write its shards' file ", path, ".shards.<server>");
    write_own();
  }
  /// Reads a server's state after its file's header; changes nothing.
  [[nodiscard]] saved_shards read_shards(checkpoint_reader& r) { return server().read(r); }
  /// Collective load over every rank, servers included (before serve()): the ranks agree that they read
  /// checkpoints of the same step (core/checkpoint.hpp; a rank that could not read its file says why, the others
  /// name it), then a server restores its shards.
  void load_cut(std::uint64_t steps, const std::string&, std::exception_ptr failure, const saved_shards* shards) {
    tether::detail::agree_on_checkpoint_step(*channel_, failure, steps);
    if (shards != nullptr) server().restore(*shards);
  }
  void save_replica(checkpoint_writer& w) const {
    if (replica_) replica_->save(w);
  }
  [[nodiscard]] saved_replica read_replica(checkpoint_reader& r) const { return replica_->read(r); }
  void restore_replica(saved_replica s) { replica().restore(std::move(s)); }

 private:
  mpi_replica<T>& replica() {
    tether::detail::require(replica_ != nullptr, "downpour: rank ", channel_ ? channel_->rank() : -1,
                            " holds shards: it serves (serve()), it takes no steps");
    return *replica_;
  }
  mpi_server<Step, Exec, T>& server() {
    tether::detail::require(server_ != nullptr, "downpour::serve: rank ", channel_ ? channel_->rank() : -1,
                            " is a replica: it calls step() and finish()");
    return *server_;
  }
  void check_size(std::size_t got, const char* what) const {
    tether::detail::require(got == size(), "ps::mpi_store: ", what, " buffer has ", got, " elements, the store has ",
                            size());
  }

  std::unique_ptr<comm::mpi> channel_;  // first: destroyed last
  shard_layout layout_{};
  T lr_ = T(0);
  std::unique_ptr<mpi_server<Step, Exec, T>> server_;
  std::unique_ptr<mpi_replica<T>> replica_;
};

/// comm::mpi's placement: the last `servers` ranks hold the shards.
template <>
struct placement<comm::mpi> {
  template <class Step, class Exec, class T>
  using store = mpi_store<Step, Exec, T>;

  static constexpr bool has_servers = true;
  static constexpr bool has_replay = false;

  /// The lease a store uses: the option, or half the communicator's timeout (300 s without one).
  [[nodiscard]] static double lease(const comm::mpi& c, const store_options& o) noexcept {
    if (o.lease > 0.0) return o.lease;
    return c.opts().timeout > 0.0 ? c.opts().timeout / 2.0 : 300.0;
  }

  /// Local checks, the same on every rank (so every rank throws, before any communication).
  template <class T>
  static void validate(const comm::mpi& c, std::size_t n, const store_options& o) {
    tether::detail::require(c.size() >= 2, "downpour under MPI needs at least 2 ranks (a replica and a server), got ",
                            c.size(), " rank");
    tether::detail::require(o.servers >= 1 && o.servers < c.size(), "downpour: servers must be in [1, ", c.size() - 1,
                            "] (the ranks less at least one replica), got servers = ", o.servers, " with ", c.size(),
                            " ranks");
    const double timeout = c.opts().timeout;
    tether::detail::require(o.lease <= 0.0 || timeout <= 0.0 || o.lease < timeout, "downpour: lease = ", o.lease,
                            " s must be shorter than comm::mpi's timeout = ", timeout,
                            " s (a replica held for a slow one must not take its server for dead)");
    if (o.shards > 0) {
      const std::size_t largest = shard_layout(n, o.shards).count(0);
      tether::detail::require(largest * sizeof(T) <= static_cast<std::size_t>(std::numeric_limits<int>::max()) - 64,
                              "downpour: a shard of ", largest, " values is too large for one MPI message; use more "
                              "shards, got shards = ", o.shards);
    }
  }

  static void check_consistent(comm::mpi& c, std::span<const consistency_item> items) { c.check_consistent(items); }

  /// Collective: duplicates the communicator (the store's private channel) and takes this rank's role.
  template <class Step, class Exec, class T>
  static store<Step, Exec, T> open(comm::mpi& c, const Exec& exec, const Step& step, std::size_t n,
                                   const store_options& o, T base_lr) {
    return store<Step, Exec, T>(c.duplicate(), exec, step, shard_layout(n, o.shards), o.servers, o, lease(c, o),
                                base_lr);
  }
};

}  // namespace tether::ps
