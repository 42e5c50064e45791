// Threads the system refuses to create (issue 13, items 1 and 2). A test-only seam
// (comm::detail::team_thread_hook) throws std::system_error before the team creates the k-th worker thread, or
// its progress thread, as std::thread's constructor does under a low `ulimit -u` (root ignores RLIMIT_NPROC,
// so the limit itself cannot be used here). Before the fix, team::run waited forever: the started workers sat
// in a barrier for one that never started. Now run() must end within a bound, with tether::runtime_error naming
// the worker that could not start, how many were asked for and the system's message; the started workers must
// have been released with tether::aborted; and the team must work again once threads can be created.

#include <tether/comm/shared_memory.hpp>
#include <tether/comm/team/thread_start.hpp>
#include <tether/core/error.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using tether::comm::detail::team_thread;
constexpr auto bound = std::chrono::seconds(30);

/// The error std::thread's constructor reports when the system has no thread to give (EAGAIN).
std::system_error refused() {
  return std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), "thread");
}

/// Sets the test-only hook for the lifetime of this object.
struct hook_guard {
  explicit hook_guard(std::function<void(team_thread, int)> h) { tether::comm::detail::team_thread_hook() = std::move(h); }
  ~hook_guard() { tether::comm::detail::team_thread_hook() = nullptr; }
  hook_guard(const hook_guard&) = delete;
  hook_guard& operator=(const hook_guard&) = delete;
};

/// Runs `f` on its own thread and returns the exception it ended with (nullptr if none). If it has not ended
/// within `bound` (the hang of issue 13), the test cannot join it: it reports the hang and exits the process.
std::exception_ptr within_bound(const char* what, std::function<void()> f) {
  std::promise<std::exception_ptr> done;
  auto result = done.get_future();
  std::thread t([&] {
    try {
      f();
      done.set_value(nullptr);
    } catch (...) {
      done.set_value(std::current_exception());
    }
  });
  if (result.wait_for(bound) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: %s did not end within %lld s (a hang)\n", what,
                 static_cast<long long>(bound.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  t.join();
  return result.get();
}

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
  return "";
}

bool is_runtime_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const tether::aborted&) {
    return false;
  } catch (const tether::runtime_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// What a worker saw. Recorded by the worker, checked on the test thread.
enum outcome : int { not_run = 0, saw_aborted = 1, saw_other = 2, completed = 3 };

}  // namespace

TEST_CASE("team::run: a worker thread the system refuses ends the run with a clear error, no hang",
          "[comm][faults]") {
  constexpr int p = 4;
  const int refused_rank = GENERATE(0, 1, 3);
  const int group_size = GENERATE(0, 2);
  CAPTURE(refused_rank, group_size);
  tether::team team(p, {.group_size = group_size});
  std::vector<std::atomic<int>> seen(p);
  std::exception_ptr e;
  {
    hook_guard guard([&](team_thread kind, int index) {
      if (kind == team_thread::worker && index == refused_rank) throw refused();
    });
    e = within_bound("team::run with a refused worker thread", [&] {
      team.run([&](tether::team::worker& w) {
        try {
          // Collectives that wait for every worker, of the team and of the group.
          for (int k = 0; k < 3; ++k) {
            w.barrier();
            std::vector<double> v{1.0};
            w.group().allreduce_sum(std::span<double>(v));
          }
          seen[static_cast<std::size_t>(w.rank())] = completed;
        } catch (const tether::aborted&) {
          seen[static_cast<std::size_t>(w.rank())] = saw_aborted;
          throw;
        } catch (...) {
          seen[static_cast<std::size_t>(w.rank())] = saw_other;
          throw;
        }
      });
    });
  }
  REQUIRE(e != nullptr);
  CHECK(is_runtime_error(e));
  const std::string m = message_of(e);
  CHECK_THAT(m, Catch::Contains("worker thread " + std::to_string(refused_rank)) &&
                    Catch::Contains("of the 4 asked for") &&
                    Catch::Contains(std::make_error_code(std::errc::resource_unavailable_try_again).message()));
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    // The workers before the refused one started and were released from their collectives; the rest never ran.
    CHECK(seen[static_cast<std::size_t>(r)] == (r < refused_rank ? saw_aborted : not_run));
  }

  // Once the system gives threads again, the same team runs: the sum of 1 over the workers is p.
  std::vector<double> sums(p, 0.0);
  const auto again = within_bound("team::run after the failure", [&] {
    team.run([&](tether::team::worker& w) {
      std::vector<double> v{1.0};
      w.allreduce_sum(std::span<double>(v));
      sums[static_cast<std::size_t>(w.rank())] = v[0];
    });
  });
  CHECK(again == nullptr);
  for (double s : sums) CHECK(s == double(p));
}

TEST_CASE("team: a progress thread the system refuses cancels the non-blocking operation on every worker",
          "[comm][faults]") {
  constexpr int p = 3;
  // The collective whose posting finds no progress thread: a sum, a broadcast, an election.
  const int op = GENERATE(0, 1, 2);
  CAPTURE(op);
  tether::team team(p);
  std::vector<std::string> seen(p);
  std::exception_ptr e;
  {
    hook_guard guard([&](team_thread kind, int) {
      if (kind == team_thread::progress) throw refused();
    });
    e = within_bound("a non-blocking collective without a progress thread", [&] {
      team.run([&](tether::team::worker& w) {
        std::vector<double> send{1.0}, recv{0.0};
        tether::election winner{};
        try {
          tether::request req;
          if (op == 0)
            req = w.iallreduce_sum(std::span<const double>(send), std::span<double>(recv));
          else if (op == 1)
            req = w.ibroadcast(std::span<double>(send), 0);
          else
            req = w.imin_loc(static_cast<float>(w.rank()), winner);
          req.wait();
          seen[static_cast<std::size_t>(w.rank())] = "completed";
        } catch (const tether::aborted& x) {
          seen[static_cast<std::size_t>(w.rank())] = std::string("aborted: ") + x.what();
          throw;
        } catch (const tether::runtime_error& x) {
          seen[static_cast<std::size_t>(w.rank())] = std::string("runtime_error: ") + x.what();
          throw;
        } catch (const std::exception& x) {
          seen[static_cast<std::size_t>(w.rank())] = std::string("other: ") + x.what();
          throw;
        }
      });
    });
  }
  REQUIRE(e != nullptr);
  CHECK(is_runtime_error(e));
  CHECK_THAT(message_of(e), Catch::Contains("progress thread"));
  const std::string sys = std::make_error_code(std::errc::resource_unavailable_try_again).message();
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    // Every worker's request throws the same clear error (none is left waiting, none merely aborted).
    CHECK_THAT(seen[static_cast<std::size_t>(r)],
               Catch::StartsWith("runtime_error: ") && Catch::Contains("progress thread") && Catch::Contains(sys));
  }

  // Once the system gives threads again, the same team sums: 1 + 2 + 3 = 6 on every worker.
  std::vector<double> sums(p, 0.0);
  const auto again = within_bound("a non-blocking sum after the failure", [&] {
    team.run([&](tether::team::worker& w) {
      std::vector<double> send{double(w.rank() + 1)}, recv{0.0};
      w.iallreduce_sum(std::span<const double>(send), std::span<double>(recv)).wait();
      sums[static_cast<std::size_t>(w.rank())] = recv[0];
    });
  });
  CHECK(again == nullptr);
  for (double s : sums) CHECK(s == 6.0);
}
