#pragma once
/// \file
/// comm::shared_memory (tether::team): a team of p threads in one process, its groups, and run().
/// See comm/shared_memory.hpp for the whole picture.

#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tether/comm/team/state.hpp"
#include "tether/comm/team/thread_start.hpp"
#include "tether/comm/team/tuning.hpp"
#include "tether/comm/team/worker.hpp"
#include "tether/core/error.hpp"
#include "tether/core/stats.hpp"

namespace tether::comm {

/// Options of a thread team.
struct shared_memory_options {
  int group_size = 0;    ///< workers per group (LSGD's local leaders); 0 = one group of all workers
  team_tuning tuning{};  ///< block sizes of the progress thread's sums and of shared stores
};

/// A team of threads in one process. Each thread is a worker; see the file comment.
class shared_memory {
 public:
  using options = shared_memory_options;

  /// A worker's handle: its rank, the team size, and the collectives. Passed to the function given to run().
  using worker = team_worker;
  /// N values shared by the workers, in shards (the one-sided tier: asynchronous EASGD's center), opened by
  /// worker::open_store.
  template <class T>
  using store = team_store<T>;

  /// A team of `workers` threads, optionally split into groups of `o.group_size`.
  explicit shared_memory(int workers, options o = {}) : size_(workers), group_size_(o.group_size) {
    tether::detail::require(workers >= 1, "shared_memory: workers must be >= 1, got workers = ", workers);
    tether::detail::require(o.group_size >= 0, "shared_memory: group_size must be >= 0, got group_size = ",
                            o.group_size);
    tether::detail::require(o.tuning.reduce_block > 0 && o.tuning.store_block > 0,
                            "shared_memory: tuning block sizes must be > 0, got reduce_block = ",
                            o.tuning.reduce_block, ", store_block = ", o.tuning.store_block);
    if (group_size_ == 0) group_size_ = workers;
    tether::detail::require(workers % group_size_ == 0, "shared_memory: workers (", workers,
                            ") must be a multiple of group_size (", group_size_, ")");
    world_ = std::make_unique<detail::team_state>(workers, o.tuning);
    counters_.resize(static_cast<std::size_t>(workers));
    const int groups = workers / group_size_;
    for (int r = 0; r < workers; ++r)
      handles_.emplace_back(new worker(world_.get(), r, &counters_[static_cast<std::size_t>(r)]));
    if (groups > 1) {
      for (int g = 0; g < groups; ++g)
        group_states_.push_back(std::make_unique<detail::team_state>(group_size_, o.tuning));
      for (int r = 0; r < workers; ++r) {
        const int g = r / group_size_;
        auto* gh = new worker(group_states_[static_cast<std::size_t>(g)].get(), r % group_size_,
                              &counters_[static_cast<std::size_t>(r)]);
        group_handles_.emplace_back(gh);
        handles_[static_cast<std::size_t>(r)]->group_ = gh;
      }
    }
    for (int r = 0; r < workers; ++r) {
      auto& h = *handles_[static_cast<std::size_t>(r)];
      h.group_id_ = r / group_size_;
      h.group_count_ = groups;
      if (h.group_ != nullptr) {
        h.group_->group_id_ = h.group_id_;
        h.group_->group_count_ = groups;
      }
    }
  }

  [[nodiscard]] int size() const noexcept { return size_; }
  [[nodiscard]] int group_size() const noexcept { return group_size_; }

  /// Bytes moved so far by worker `rank`.
  [[nodiscard]] const comm_counters& counters(int rank) const { return counters_.at(static_cast<std::size_t>(rank)); }

  /// Runs `f(worker&)` on size() threads and returns when all are done. If any worker throws, every other
  /// worker is released from its collectives and the first exception is rethrown here. If the system refuses
  /// to create one of the threads (std::system_error, e.g. a low `ulimit -u`), the workers already started are
  /// released from their collectives (tether::aborted) and joined, and tether::runtime_error names the worker
  /// that could not start, how many were asked for, and the system's message.
  template <class F>
  void run(F&& f) {
    world_->reset();
    for (auto& g : group_states_) g->reset();
    std::mutex em;
    std::exception_ptr first;
    bool first_is_abort = false;
    std::string start_failure;
    const auto body = [&](int r) {
      worker& w = *handles_[static_cast<std::size_t>(r)];
      try {
        f(w);
        mark_finished(r);
      } catch (...) {
        const bool is_abort = is_aborted(std::current_exception());
        {
          std::lock_guard lk(em);
          if (!first || (first_is_abort && !is_abort)) {
            first = std::current_exception();
            first_is_abort = is_abort;
          }
        }
        abort_all();
        mark_finished(r);
      }
    };
    {
      std::vector<std::jthread> threads;
      threads.reserve(static_cast<std::size_t>(size_));
      for (int r = 0; r < size_; ++r) {
        try {
          threads.push_back(
              detail::start_team_thread<std::jthread>(detail::team_thread::worker, r, [&body, r] { body(r); }));
        } catch (const std::system_error& e) {
          start_failure = tether::detail::concat("tether: team::run: the system could not start worker thread ", r,
                                                 " of the ", size_, " asked for (workers ", r, "..", size_ - 1,
                                                 " did not start; the ", r, " started were stopped): ", e.what());
          // The started workers must not wait in a collective for the ones that never start.
          abort_all();
          for (int m = r; m < size_; ++m) mark_finished(m);
          break;
        }
      }
    }  // joins the workers that started
    if (!start_failure.empty()) throw runtime_error(start_failure);
    if (first) std::rethrow_exception(first);
  }

 private:
  static bool is_aborted(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const aborted&) {
      return true;
    } catch (...) {
      return false;
    }
  }
  void abort_all() {
    world_->abort();
    for (auto& g : group_states_) g->abort();
  }
  void mark_finished(int r) {
    world_->finish(r);
    if (!group_states_.empty())
      group_states_[static_cast<std::size_t>(r / group_size_)]->finish(r % group_size_);
  }

  int size_;
  int group_size_;
  std::unique_ptr<detail::team_state> world_;
  std::vector<std::unique_ptr<detail::team_state>> group_states_;
  std::vector<comm_counters> counters_;
  std::vector<std::unique_ptr<worker>> handles_;
  std::vector<std::unique_ptr<worker>> group_handles_;
};

}  // namespace tether::comm
