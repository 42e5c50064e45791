#pragma once
/// \file
/// The Fashion-MNIST training driver on MPI ranks: the same runs as train.hpp's thread team (the same algorithms,
/// options, shards, minibatches, schedule and local loop, detail::train_worker), with one worker per rank of a
/// `tether::comm::mpi`. Used by the cluster study (`fmnist_study_mpi`, bench/fashion_mnist) under mpirun.
///
/// Every rank runs `fmnist::train_mpi(comm, train, test, o)` with the same arguments; rank r is worker r and
/// trains on the r-th shard. Downpour: the last rank serves the shards (`servers` = 1, it only calls serve()) and
/// the other ranks are the replicas, so `o.workers` counts the replicas. At the end of every epoch the workers
/// evaluate the output model (train.hpp's table) together, each on 1/p of the test set:
///
/// | output model  | how the workers get it (on a duplicate of the communicator, outside tether's counters)   |
/// |---------------|------------------------------------------------------------------------------------------|
/// | leader        | worker 0 names its (global) leader; the leader broadcasts its parameters                |
/// | center        | worker 0 broadcasts its center copy (asynchronous EASGD: the center as it read it last) |
/// | average       | an all-reduce of the parameters, divided by p                                            |
/// | server        | worker 0 reads the shards from the server (a store read; its bytes are taken out of the |
/// |               | counts) and broadcasts them                                                               |
///
/// Every collective of the evaluation is non-blocking and polled for at most the communicator's timeout (a rank
/// that died or stopped makes the others fail with an error naming the operation, not hang). The evaluation's
/// first all-reduce is a barrier: a worker's time waiting there for a slower worker counts as
/// training time, the evaluation after it does not. The result (epochs, times, bytes per worker: sums over the
/// workers divided by p) is complete on worker 0; the other ranks get the same epochs, and a server rank an empty
/// result.

#include <mpi.h>

#include "train.hpp"

#include <tether/comm/mpi.hpp>
#include <tether/comm/mpi/pairwise.hpp>
#include <tether/core/poll.hpp>
#include <tether/ps/mpi_store.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace fmnist {
namespace detail {

/// A communicator of the training ranks (every rank but Downpour's server), duplicated or split off the
/// optimizer's, so that the evaluation's messages never mix with tether's and are not counted by it.
class eval_comm {
 public:
  eval_comm(MPI_Comm parent, bool member) {
    tether::detail::require(MPI_Comm_split(parent, member ? 0 : MPI_UNDEFINED, 0, &comm_) == MPI_SUCCESS,
                            "fmnist::train_mpi: MPI_Comm_split failed");
  }
  eval_comm(const eval_comm&) = delete;
  eval_comm& operator=(const eval_comm&) = delete;
  ~eval_comm() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  [[nodiscard]] MPI_Comm get() const noexcept { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

/// Checks an MPI call of the evaluation.
inline void mpi_check(int rc, const char* what) {
  tether::detail::require(rc == MPI_SUCCESS, "fmnist::train_mpi: ", what, " failed (MPI error ", rc, ")");
}

/// The evaluation's collectives on `comm`, each non-blocking and polled for at most `timeout` seconds (<= 0:
/// as long as it takes); past it, tether::timeout naming the operation.
struct eval_collectives {
  MPI_Comm comm;
  double timeout;

  void wait(MPI_Request& r, const char* what) const {
    tether::detail::poll_until(
        timeout,
        [&] {
          int done = 0;
          mpi_check(MPI_Test(&r, &done, MPI_STATUS_IGNORE), what);
          return done != 0;
        },
        [&] {
          return tether::detail::concat("fmnist::train_mpi: ", what, " of the evaluation did not complete within ",
                                        timeout, " s: a rank may have died or stopped");
        });
  }
  void allreduce_sum(const void* in, void* out, int count, MPI_Datatype type) const {
    MPI_Request r = MPI_REQUEST_NULL;
    mpi_check(MPI_Iallreduce(in, out, count, type, MPI_SUM, comm, &r), "MPI_Iallreduce");
    wait(r, "MPI_Iallreduce");
  }
  void broadcast(void* data, int count, MPI_Datatype type, int root) const {
    MPI_Request r = MPI_REQUEST_NULL;
    mpi_check(MPI_Ibcast(data, count, type, root, comm, &r), "MPI_Ibcast");
    wait(r, "MPI_Ibcast");
  }
  void barrier() const {
    MPI_Request r = MPI_REQUEST_NULL;
    mpi_check(MPI_Ibarrier(comm, &r), "MPI_Ibarrier");
    wait(r, "MPI_Ibarrier");
  }
};

/// The run of one optimizer type `Opt` on the ranks of `comm` (one worker per rank).
template <class Opt>
train_result run_rank(tether::comm::mpi& comm, const dataset& train, const dataset& test, const train_options& o,
                      const typename Opt::options& opts, output_model model_kind, const train_callbacks& cb) {
  using clock = std::chrono::steady_clock;
  const std::size_t n = mlp::parameter_count;
  const auto p = static_cast<std::size_t>(o.workers);
  const std::size_t steps_per_epoch = shard::common_batches_per_epoch(train.count, p, o.batch);
  tether::detail::require(steps_per_epoch > 0, "fmnist::train_mpi: ", train.count,
                          " training samples give no full batch of ", o.batch, " per worker with ", p, " workers");
  const progress_reporter progress(o, steps_per_epoch, cb);

  blas_single_thread();
  // The evaluation's communicator is split off before the optimizer exists: an asynchronous pull may have
  // collectives of its own in flight on `comm` once it does. The training ranks are the first p (Downpour's
  // server is the last rank).
  const eval_comm ev(comm.native(), comm.rank() < static_cast<int>(p));
  Opt opt(comm, n, opts);
  bool server = false;
  if constexpr (requires { opt.is_server(); }) server = opt.is_server();
  tether::detail::require(server == (comm.rank() >= static_cast<int>(p)), "fmnist::train_mpi: rank ", comm.rank(),
                          (server ? " serves the shards" : " trains"), " but ", p, " of ", comm.size(),
                          " ranks were to train");
  train_result result;
  result.parameters = n;
  result.steps_per_epoch = steps_per_epoch;
  if (server) {
    if constexpr (requires { opt.serve(); }) opt.serve();  // returns when every replica finished
    return result;
  }
  int eval_rank = 0;
  int eval_size = 0;
  MPI_Comm_rank(ev.get(), &eval_rank);
  MPI_Comm_size(ev.get(), &eval_size);
  tether::detail::require(static_cast<std::size_t>(eval_size) == p, "fmnist::train_mpi: ", eval_size,
                          " training ranks, but workers = ", p);
  const auto r = static_cast<std::size_t>(eval_rank);
  const eval_collectives coll{ev.get(), comm.opts().timeout};

  mlp model(train);
  shard data = o.replicate_data ? shard(train.count, 0, 1, o.batch, mix_seed({o.seed, r, 0x7265706cULL}))
                                : shard(train.count, r, p, o.batch, o.seed);
  const dataset test_part = part_of(test, r, p);
  tether::exec::serial::buffer<float> x(n);
  tether::exec::serial::buffer<float> g(n);
  model.init(x, o.seed);  // the same starting point on every worker
  std::vector<float> output(n);

  double last_accuracy = 0.0;
  double eval_total = 0.0;
  double eval_bytes_received = 0.0;  // bytes of the evaluation's store reads (Downpour), taken out of the counts
  worker_clock clk;
  coll.barrier();
  const auto t_start = clock::now();

  const auto evaluate = [&](std::size_t epoch, std::uint64_t step) {
    if constexpr (requires { opt.sync(x); }) opt.sync(x);  // SwarmSGD: no exchange in flight past this point
    const auto st = opt.stats();
    std::array<double, 6> sums{clk.loss_sum, static_cast<double>(st.bytes_received) - eval_bytes_received,
                               clk.gradient_s, clk.step_s, st.seconds_compute, st.seconds_comm};
    coll.allreduce_sum(MPI_IN_PLACE, sums.data(), static_cast<int>(sums.size()), MPI_DOUBLE);  // also the barrier
    const auto t_eval = clock::now();
    const auto pd = static_cast<double>(p);
    epoch_record rec;
    rec.epoch = epoch;
    rec.step = step;
    rec.train_loss = epoch == 0 ? std::nan("") : sums[0] / (pd * static_cast<double>(steps_per_epoch));
    rec.bytes_per_worker = sums[1] / pd;
    rec.gradient_s = sums[2] / pd;
    rec.step_s = sums[3] / pd;
    rec.kernel_s = sums[4] / pd;
    rec.comm_s = sums[5] / pd;
    rec.rounds = st.rounds;
    rec.leader_changes = st.leader_changes;

    const std::span<float> out(output);
    const auto broadcast_from = [&](int root, const float* src) {
      if (eval_rank == root) std::copy(src, src + n, output.begin());
      coll.broadcast(output.data(), static_cast<int>(n), MPI_FLOAT, root);
    };
    const auto average_into_output = [&]() {
      coll.allreduce_sum(x.data(), output.data(), static_cast<int>(n), MPI_FLOAT);
      const float inv = 1.0F / static_cast<float>(p);
      for (float& v : output) v *= inv;
    };
    if (step == 0) {
      std::copy(x.data(), x.data() + n, output.begin());  // every worker holds the same initial model
    } else if (model_kind == output_model::leader) {
      int leader = eval_rank == 0 ? std::max(0, st.leader) : 0;
      coll.broadcast(&leader, 1, MPI_INT, 0);
      broadcast_from(leader, x.data());
    } else if (model_kind == output_model::center) {
      if constexpr (requires { Opt::pull_type::buffers; }) {
        if constexpr (Opt::pull_type::buffers > 0) broadcast_from(0, opt.target(0).data());
      }
    } else if (model_kind == output_model::server) {
      if constexpr (requires { opt.store().read(out); }) {
        if (eval_rank == 0) {
          // The communicator's counters (the optimizer's stats catch up only at its next step).
          const auto before = static_cast<double>(comm.counters().bytes_received);
          opt.store().read(out);
          eval_bytes_received += static_cast<double>(comm.counters().bytes_received) - before;
        }
        coll.broadcast(output.data(), static_cast<int>(n), MPI_FLOAT, 0);
      }
    } else {
      average_into_output();
    }
    const double acc = model.accuracy(std::span<const float>(output), test_part);
    auto correct = static_cast<long long>(std::lround(acc * static_cast<double>(test_part.count)));
    if (o.evaluate_average) {
      long long correct_average = correct;
      if (step > 0 && model_kind != output_model::average) {
        average_into_output();
        correct_average = std::lround(model.accuracy(std::span<const float>(output), test_part) *
                                      static_cast<double>(test_part.count));
      }
      std::array<long long, 2> c{correct, correct_average};
      coll.allreduce_sum(MPI_IN_PLACE, c.data(), 2, MPI_LONG_LONG);
      rec.test_accuracy = static_cast<double>(c[0]) / static_cast<double>(test.count);
      rec.average_accuracy = static_cast<double>(c[1]) / static_cast<double>(test.count);
    } else {
      coll.allreduce_sum(MPI_IN_PLACE, &correct, 1, MPI_LONG_LONG);
      rec.test_accuracy = static_cast<double>(correct) / static_cast<double>(test.count);
      rec.average_accuracy = std::nan("");
    }
    eval_total += seconds_since(t_eval);
    rec.elapsed_s = seconds_since(t_start);
    rec.train_s = rec.elapsed_s - eval_total;
    last_accuracy = rec.test_accuracy;
    result.epochs.push_back(rec);
    if (eval_rank == 0 && cb.on_epoch) cb.on_epoch(rec);
  };

  train_worker(opt, model, data, x, g, o.epochs, steps_per_epoch, clk, evaluate,
               [&](std::size_t e, std::size_t k, std::uint64_t step) {
                 if (eval_rank != 0 || !progress.due(k, step)) return;
                 const auto received = static_cast<double>(opt.stats().bytes_received);  // worker 0's own
                 progress.report(e, k, step, clk.loss_sum, last_accuracy, received, t_start);
               });
  result.wall_s = seconds_since(t_start);
  result.eval_s = eval_total;
  return result;
}

/// Runs an optimizer type on the ranks of a comm::mpi (run_rank): the MPI backend of train_mpi().
struct mpi_backend {
  using comm_type = tether::comm::mpi;
  tether::comm::mpi& comm;
  const dataset& train;
  const dataset& test;
  const train_options& o;
  const train_callbacks& cb;

  template <class Opt>
  train_result run(const typename Opt::options& opts, output_model model_kind, int /*group_size*/) const {
    return run_rank<Opt>(comm, train, test, o, opts, model_kind, cb);  // groups: comm's (a node, or group_size)
  }
};

}  // namespace detail

/// Trains the MLP on the ranks of `comm`, one worker per rank (Downpour: the last rank serves, the others train),
/// running `o.algo`; every rank calls it with the same arguments. `o.workers` is ignored: the workers are the
/// ranks. `o.group_size` is ignored: lsgd-grouped's groups are the communicator's (`comm.group()`: the ranks of a
/// node, or `group_size` consecutive ranks from comm::mpi's options). Throws tether::error on bad options (on every
/// rank) and on a failure of the run.
inline train_result train_mpi(tether::comm::mpi& comm, const dataset& train, const dataset& test,
                              const train_options& o, const train_callbacks& cb = {}) {
  train_options run = o;
  const bool downpour = o.algo == algorithm::downpour || o.algo == algorithm::downpour_sgd;
  tether::detail::require(!downpour || comm.size() >= 2, "fmnist::train_mpi: ", algorithm_name(o.algo),
                          " needs at least 2 ranks (the last one serves the shards), got ", comm.size());
  run.workers = comm.size() - (downpour ? 1 : 0);
  run.group_size = 1;  // validate(): lsgd-grouped's groups come from the communicator
  validate(run, train.count);
  tether::detail::require(test.count > 0, "fmnist::train_mpi: the test set is empty (accuracy would be 0/0)");
  return detail::run_on(detail::mpi_backend{comm, train, test, run, cb}, train, run);
}

}  // namespace fmnist
