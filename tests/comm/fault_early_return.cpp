// A worker that returns early: while the others wait in a collective that needs it, worker 3's function
// returns normally. The collective cannot complete, so the waiting workers get tether::runtime_error (the
// first) or tether::aborted (the rest), and team.run() throws the tether::runtime_error instead of hanging.

#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>
#include <tether/core/request.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace {

enum class waits_in {
  barrier,
  allreduce,
  broadcast,
  min_loc,
  iallreduce_wait,
  group_barrier,
  group_allreduce
};

const char* name_of(waits_in b) {
  switch (b) {
    case waits_in::barrier:
      return "barrier";
    case waits_in::allreduce:
      return "allreduce_sum";
    case waits_in::broadcast:
      return "broadcast";
    case waits_in::min_loc:
      return "min_loc";
    case waits_in::iallreduce_wait:
      return "iallreduce_sum wait";
    case waits_in::group_barrier:
      return "group barrier";
    case waits_in::group_allreduce:
      return "group allreduce_sum";
  }
  return "?";
}

constexpr int leaver = 3;

}  // namespace

TEST_CASE("a worker that returns early makes run() throw tether::runtime_error, not hang", "[comm][faults]") {
  const auto where = GENERATE(waits_in::barrier, waits_in::allreduce, waits_in::broadcast, waits_in::min_loc,
                              waits_in::iallreduce_wait, waits_in::group_barrier, waits_in::group_allreduce);
  CAPTURE(name_of(where));
  for (int rep = 0; rep < 10; ++rep) {
    CAPTURE(rep);
    tether::team team(4, {.group_size = 2});
    std::array<std::atomic<int>, 4> failed{};  // 1: tether::runtime_error (aborted included)
    bool threw_runtime_error = false;
    bool threw_aborted = false;
    std::string what;
    try {
      team.run([&](tether::team::worker& w) {
        std::vector<float> buf(100, 1.0f);
        w.allreduce_sum(std::span<float>(buf));  // everyone takes part in this one
        if (w.rank() == leaver) return;
        try {
          switch (where) {
            case waits_in::barrier:
              w.barrier();
              break;
            case waits_in::allreduce:
              w.allreduce_sum(std::span<float>(buf));
              break;
            case waits_in::broadcast:
              w.broadcast(std::span<float>(buf), 0);
              break;
            case waits_in::min_loc:
              (void)w.min_loc(1.0f);
              break;
            case waits_in::iallreduce_wait: {
              std::vector<float> out(buf.size());
              auto req = w.iallreduce_sum(std::span<const float>(buf), std::span<float>(out));
              req.wait();
              break;
            }
            case waits_in::group_barrier:
              w.group().barrier();
              break;
            case waits_in::group_allreduce:
              w.group().allreduce_sum(std::span<float>(buf));
              break;
          }
          // Group 0 completes its group collectives; it must be stopped in the next team collective.
          w.barrier();
        } catch (const tether::runtime_error&) {
          failed[static_cast<std::size_t>(w.rank())] = 1;
          throw;
        }
      });
    } catch (const tether::aborted&) {
      threw_aborted = true;
    } catch (const tether::runtime_error& e) {
      threw_runtime_error = true;
      what = e.what();
    }
    CHECK_FALSE(threw_aborted);
    REQUIRE(threw_runtime_error);
    CHECK_THAT(what, Catch::Contains("cannot complete"));
    for (int r = 0; r < 4; ++r) {
      CAPTURE(r);
      CHECK(failed[static_cast<std::size_t>(r)] == (r == leaver ? 0 : 1));
    }
  }
}

TEST_CASE("workers that all return after their last collective finish normally", "[comm][faults]") {
  // The check above must not fire when a fast worker returns while the others are still leaving the last
  // collective they all completed.
  for (int rep = 0; rep < 20; ++rep) {
    tether::team team(4, {.group_size = 2});
    std::vector<std::vector<float>> got(4);
    CHECK_NOTHROW(team.run([&](tether::team::worker& w) {
      std::vector<float> buf(10, static_cast<float>(w.rank()));
      w.group().allreduce_sum(std::span<float>(buf));
      w.broadcast(std::span<float>(buf), 3);
      w.allreduce_sum(std::span<float>(buf));
      got[static_cast<std::size_t>(w.rank())] = buf;
    }));
    for (const auto& g : got) {
      REQUIRE(g.size() == 10);
      CHECK(g[0] == 20.0f);  // group 1 sums 2 + 3 = 5; broadcast from rank 3; four copies summed
    }
  }
}
