// A worker that throws: while the others are blocked in a collective (barrier, all-reduce, broadcast,
// election, the wait of a non-blocking sum, a group collective), worker 2 throws std::runtime_error("boom")
// after a few good collectives. Every other worker must be released with tether::aborted, and team.run()
// must rethrow the original exception (not tether::aborted) on the caller's thread. The test finishing at
// all proves there is no deadlock; each scenario is repeated to shake out orderings.

#include "team_test_util.hpp"

#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>
#include <tether/core/request.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

namespace {

/// The collective the surviving workers are in when worker 2 throws.
enum class blocked_in {
  barrier,
  allreduce,
  broadcast,
  min_loc,
  iallreduce_wait,
  iallreduce_posted,
  group_allreduce
};

const char* name_of(blocked_in b) {
  switch (b) {
    case blocked_in::barrier:
      return "barrier";
    case blocked_in::allreduce:
      return "allreduce_sum";
    case blocked_in::broadcast:
      return "broadcast";
    case blocked_in::min_loc:
      return "min_loc";
    case blocked_in::iallreduce_wait:
      return "iallreduce_sum wait (thrower never posts)";
    case blocked_in::iallreduce_posted:
      return "iallreduce_sum posted by everyone, thrower leaves before wait";
    case blocked_in::group_allreduce:
      return "group allreduce_sum";
  }
  return "?";
}

/// What a worker saw. Recorded by the worker, checked on the test thread.
enum outcome : int { none = 0, saw_aborted = 1, saw_other = 2, completed = 3, threw_boom = 4 };

constexpr int thrower = 2;

/// One run of a 4-worker team (groups of 2) where worker 2 throws and the others block in `where`.
/// Returns what run() threw, and each worker's outcome.
struct result {
  bool threw = false;
  bool is_aborted = false;
  bool is_std_runtime_error = false;
  std::string what;
  std::array<int, 4> outcome{};
};

result run_scenario(blocked_in where) {
  tether::team team(4, {.group_size = 2});
  std::array<std::atomic<int>, 4> out{};
  result res;
  try {
    team.run([&](tether::team::worker& w) {
      const auto me = static_cast<std::size_t>(w.rank());
      // A few collectives that succeed first. Under load a worker can still be in the last group barrier when
      // the thrower (past its own group's barrier) throws: it is stopped there, which is an abort too.
      try {
        for (int k = 0; k < 3; ++k) {
          auto v = team_test::data_of<float>(w.rank(), 64);
          w.allreduce_sum(std::span<float>(v));
          w.group().barrier();
        }
      } catch (const tether::aborted&) {
        out[me] = saw_aborted;
        throw;
      }
      std::vector<float> buf(257, 1.0f);
      std::vector<float> out_buf(257, 0.0f);
      if (w.rank() == thrower) {
        if (where == blocked_in::iallreduce_posted) {
          // Post, then throw with the request alive: its destructor waits for the (complete-able) sum.
          auto req = w.iallreduce_sum(std::span<const float>(buf), std::span<float>(out_buf));
          out[me] = threw_boom;
          throw std::runtime_error("boom");
        }
        // Give the others time to block (scheduling only; nothing is measured).
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        out[me] = threw_boom;
        throw std::runtime_error("boom");
      }
      try {
        switch (where) {
          case blocked_in::barrier:
            w.barrier();
            break;
          case blocked_in::allreduce:
            w.allreduce_sum(std::span<float>(buf));
            break;
          case blocked_in::broadcast:
            w.broadcast(std::span<float>(buf), 0);
            break;
          case blocked_in::min_loc:
            (void)w.min_loc(static_cast<float>(w.rank()));
            break;
          case blocked_in::iallreduce_wait: {
            auto req = w.iallreduce_sum(std::span<const float>(buf), std::span<float>(out_buf));
            req.wait();
            break;
          }
          case blocked_in::iallreduce_posted: {
            auto req = w.iallreduce_sum(std::span<const float>(buf), std::span<float>(out_buf));
            req.wait();   // completes: the thrower posted too
            w.barrier();  // blocks: the thrower is gone
            break;
          }
          case blocked_in::group_allreduce:
            w.group().allreduce_sum(std::span<float>(buf));
            break;
        }
        // Workers of the other group may complete a group collective; they must then be stopped in the next
        // team collective.
        w.barrier();
        out[me] = completed;
      } catch (const tether::aborted&) {
        out[me] = saw_aborted;
        throw;
      } catch (...) {
        out[me] = saw_other;
        throw;
      }
    });
  } catch (const tether::aborted& e) {
    res.threw = true;
    res.is_aborted = true;
    res.what = e.what();
  } catch (const std::runtime_error& e) {
    res.threw = true;
    res.is_std_runtime_error = typeid(e) == typeid(std::runtime_error);
    res.what = e.what();
  } catch (...) {
    res.threw = true;
  }
  for (std::size_t r = 0; r < 4; ++r) res.outcome[r] = out[r].load();
  return res;
}

}  // namespace

TEST_CASE("a worker that throws stops the team; run() rethrows its exception", "[comm][faults]") {
  const auto where =
      GENERATE(blocked_in::barrier, blocked_in::allreduce, blocked_in::broadcast, blocked_in::min_loc,
               blocked_in::iallreduce_wait, blocked_in::iallreduce_posted, blocked_in::group_allreduce);
  CAPTURE(name_of(where));
  for (int rep = 0; rep < 10; ++rep) {
    CAPTURE(rep);
    const result res = run_scenario(where);
    REQUIRE(res.threw);
    CHECK_FALSE(res.is_aborted);
    CHECK(res.is_std_runtime_error);
    CHECK(res.what == "boom");
    for (int r = 0; r < 4; ++r) {
      CAPTURE(r);
      CHECK(res.outcome[static_cast<std::size_t>(r)] == (r == thrower ? threw_boom : saw_aborted));
    }
  }
}

TEST_CASE("a team can run again after a failed run", "[comm][faults]") {
  tether::team team(4, {.group_size = 2});
  CHECK_THROWS_WITH(team.run([&](tether::team::worker& w) {
    if (w.rank() == 1) throw std::runtime_error("boom");
    std::vector<double> v(10, 1.0);
    w.allreduce_sum(std::span<double>(v));
  }),
                    "boom");
  std::vector<std::vector<double>> got(4);
  std::vector<std::vector<double>> got_i(4);
  team.run([&](tether::team::worker& w) {
    auto v = team_test::data_of<double>(w.rank(), 33);
    w.allreduce_sum(std::span<double>(v));
    const auto send = team_test::data_of<double>(w.rank(), 33);
    std::vector<double> isum(33, 0.0);
    auto req = w.iallreduce_sum(std::span<const double>(send), std::span<double>(isum));
    w.group().barrier();
    req.wait();
    got[static_cast<std::size_t>(w.rank())] = std::move(v);
    got_i[static_cast<std::size_t>(w.rank())] = std::move(isum);
  });
  const auto ref = team_test::rank_order_sum<double>(4, 33);
  for (std::size_t r = 0; r < 4; ++r) {
    CHECK(team_test::bit_equal(got[r], ref));
    CHECK(team_test::bit_equal(got_i[r], ref));
  }
}

TEST_CASE("several workers throwing at once: run() rethrows one of their exceptions", "[comm][faults]") {
  for (int rep = 0; rep < 10; ++rep) {
    tether::team team(4);
    std::string what;
    try {
      team.run([&](tether::team::worker& w) {
        w.barrier();
        if (w.rank() % 2 == 1) throw std::runtime_error("boom " + std::to_string(w.rank()));
        std::vector<float> v(8, 1.0f);
        w.allreduce_sum(std::span<float>(v));
      });
    } catch (const tether::aborted&) {
      what = "aborted";
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CAPTURE(rep);
    CHECK((what == "boom 1" || what == "boom 3"));
  }
}
