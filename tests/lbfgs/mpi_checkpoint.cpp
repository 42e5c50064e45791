// Checkpoints of Sandblaster L-BFGS on comm::mpi (run at 3 ranks): a job cut after its checkpoints and a new
// minimize resuming from the ranks' files end bit for bit where the uninterrupted job (the reference, run
// without checkpoints) ends, with the same per-iteration records; a damaged file on one rank, ranks whose
// files hold different iterations, and another rank count fail on every rank with tether::error, x unchanged.

#include <catch2/catch.hpp>

#include <mpi.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/checkpoint_files.hpp"
#include "tether/lbfgs/mpi.hpp"
#include "tether/problems/logistic.hpp"

using tether::comm::mpi;
namespace fs = std::filesystem;

namespace {

const tether::problems::logistic<double> logit({.samples = 800, .features = 9, .l2 = 1e-3, .seed = 17});

tether::lbfgs::options base_options(std::size_t max_iterations) {
  tether::lbfgs::options o;
  o.history = 4;
  o.epsilon = 1e-14;  // not reached: every run stops at max_iterations
  o.max_iterations = max_iterations;
  o.portions = 7;
  o.shards = 3;
  o.timeout = 60.0;
  return o;
}

/// A directory every rank names the same (rank 0's process id), made by rank 0.
std::string shared_dir(mpi& comm, const char* name) {
  long id = comm.rank() == 0 ? static_cast<long>(::getpid()) : 0L;
  MPI_Bcast(&id, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  const fs::path dir = fs::temp_directory_path() / ("tether_lbfgs_mpi_ck_" + std::to_string(id) + "_" + name);
  if (comm.rank() == 0) fs::create_directories(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  return dir.string();
}

void remove_dir(const std::string& dir) {
  MPI_Barrier(MPI_COMM_WORLD);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

struct outcome_of_run {
  tether::lbfgs::result r;
  std::vector<double> x, g;
  std::string error;
};

outcome_of_run run(tether::comm::mpi& comm, const std::vector<double>& x0, const tether::lbfgs::options& o) {
  outcome_of_run out;
  out.x = x0;
  out.g.assign(x0.size(), 0.0);
  auto copy = logit;
  try {
    out.r = tether::lbfgs::minimize(tether::exec::serial{}, comm, copy, out.x, out.g, o);
  } catch (const tether::error& e) {
    out.error = e.what();
  }
  return out;
}

}  // namespace

TEST_CASE("Sandblaster L-BFGS on MPI resumes from the ranks' checkpoints bit for bit", "[lbfgs][mpi]") {
  mpi comm;
  const std::string dir = shared_dir(comm, "resume");
  const std::string stem = dir + "/ck";
  const std::vector<double> x0(logit.dimension(), 0.0);
  const auto ref = run(comm, x0, base_options(16));
  REQUIRE(ref.error.empty());
  REQUIRE(ref.r.iterations == 16);

  auto first = base_options(10);  // checkpoints at 4 and 8; the job goes on to 10, as one that died there
  first.checkpoint = {.path = stem, .every = 4};
  REQUIRE(run(comm, x0, first).error.empty());
  CHECK(fs::exists(tether::lbfgs::checkpoint_file(stem, comm.rank())));

  auto second = base_options(16);
  second.checkpoint.resume_from = stem;
  const auto resumed = run(comm, x0, second);
  REQUIRE(resumed.error.empty());
  CHECK(same_bits(resumed.x, ref.x));
  CHECK(same_bits(resumed.g, ref.g));
  CHECK(resumed.r.iterations == ref.r.iterations);
  CHECK(resumed.r.function_evaluations == ref.r.function_evaluations);
  REQUIRE(resumed.r.history.size() == ref.r.history.size());
  for (std::size_t i = 0; i < ref.r.history.size(); ++i) {
    INFO("iteration " << i + 1);
    CHECK(std::memcmp(&resumed.r.history[i].f, &ref.r.history[i].f, sizeof(double)) == 0);
    CHECK(std::memcmp(&resumed.r.history[i].step, &ref.r.history[i].step, sizeof(double)) == 0);
    CHECK(resumed.r.history[i].evaluations == ref.r.history[i].evaluations);
  }
  remove_dir(dir);
}

TEST_CASE("Sandblaster L-BFGS on MPI: bad checkpoints fail on every rank, x unchanged", "[lbfgs][mpi]") {
  mpi comm;
  if (comm.size() < 3) return;
  const std::string dir = shared_dir(comm, "bad");
  const std::string stem = dir + "/ck";
  const std::vector<double> x0(logit.dimension(), 0.5);
  auto first = base_options(6);
  first.checkpoint = {.path = stem, .every = 3};
  REQUIRE(run(comm, x0, first).error.empty());  // files of iteration 6
  auto early = base_options(3);
  early.checkpoint = {.path = dir + "/early", .every = 3};
  REQUIRE(run(comm, x0, early).error.empty());  // files of iteration 3
  const std::string mine = tether::lbfgs::checkpoint_file(stem, comm.rank());
  auto resume = base_options(12);
  resume.checkpoint.resume_from = stem;

  SECTION("a truncated file on rank 1") {
    if (comm.rank() == 1) {
      auto b = tether_test::bytes_of(mine);
      b.resize(b.size() - 3);
      tether_test::write_bytes(mine, b);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const auto out = run(comm, x0, resume);
    INFO(out.error);
    REQUIRE_FALSE(out.error.empty());
    CHECK(same_bits(out.x, x0));
    if (comm.rank() == 1) {
      CHECK(out.error.find(mine) != std::string::npos);
      CHECK(out.error.find("truncated") != std::string::npos);
    }
  }
  SECTION("rank 2's file of another iteration") {
    if (comm.rank() == 2)
      fs::copy_file(tether::lbfgs::checkpoint_file(dir + "/early", 2), mine,
                    fs::copy_options::overwrite_existing);
    MPI_Barrier(MPI_COMM_WORLD);
    const auto out = run(comm, x0, resume);
    INFO(out.error);
    REQUIRE_FALSE(out.error.empty());
    CHECK(same_bits(out.x, x0));
    CHECK(out.error.find("the step of their checkpoints") != std::string::npos);
  }
  SECTION("another rank count") {
    MPI_Comm two = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, comm.rank() < 2 ? 0 : MPI_UNDEFINED, comm.rank(), &two);
    if (two != MPI_COMM_NULL) {
      {
        mpi sub(two, {.timeout = 20.0});
        const auto out = run(sub, x0, resume);
        INFO(out.error);
        REQUIRE_FALSE(out.error.empty());
        CHECK(same_bits(out.x, x0));
        CHECK(out.error.find("the worker count = 3, this run has the worker count = 2") != std::string::npos);
      }
      MPI_Comm_free(&two);
    }
  }
  remove_dir(dir);
}
