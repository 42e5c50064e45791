// Workers that disagree on a buffer size: every worker of an all-reduce, broadcast or non-blocking sum whose
// sizes differ across workers gets tether::error (none is left waiting, none sees tether::aborted instead),
// and team.run() rethrows a tether::error.

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

enum class collective {
  allreduce_float,
  allreduce_double,
  broadcast,
  iallreduce,
  group_allreduce,
  group_broadcast
};

const char* name_of(collective c) {
  switch (c) {
    case collective::allreduce_float:
      return "allreduce_sum<float>";
    case collective::allreduce_double:
      return "allreduce_sum<double>";
    case collective::broadcast:
      return "broadcast";
    case collective::iallreduce:
      return "iallreduce_sum";
    case collective::group_allreduce:
      return "group allreduce_sum";
    case collective::group_broadcast:
      return "group broadcast";
  }
  return "?";
}

enum outcome : int { none = 0, saw_error = 1, saw_aborted = 2, saw_other = 3, completed = 4 };

}  // namespace

TEST_CASE("mismatched buffer sizes across workers are a tether::error on every worker", "[comm][faults]") {
  const auto which =
      GENERATE(collective::allreduce_float, collective::allreduce_double, collective::broadcast,
               collective::iallreduce, collective::group_allreduce, collective::group_broadcast);
  const int odd_one = GENERATE(0, 1, 3);  // the worker whose buffer is one element longer
  CAPTURE(name_of(which), odd_one);
  const bool grouped = which == collective::group_allreduce || which == collective::group_broadcast;

  tether::team team(4, {.group_size = 2});
  std::array<std::atomic<int>, 4> out{};
  bool threw_error = false;
  std::string what;
  try {
    team.run([&](tether::team::worker& w) {
      const std::size_t n = 16 + (w.rank() == odd_one ? 1 : 0);
      std::vector<float> f(n, 1.0f);
      std::vector<double> d(n, 1.0);
      std::vector<float> recv(n, 0.0f);
      // In the group cases only the odd worker's group disagrees; the other group completes its collective
      // (then is stopped in the team barrier that follows) or is interrupted by the abort.
      const bool my_group_disagrees = !grouped || (w.rank() / 2 == odd_one / 2);
      try {
        switch (which) {
          case collective::allreduce_float:
            w.allreduce_sum(std::span<float>(f));
            break;
          case collective::allreduce_double:
            w.allreduce_sum(std::span<double>(d));
            break;
          case collective::broadcast:
            w.broadcast(std::span<float>(f), 2);
            break;
          case collective::iallreduce: {
            auto req = w.iallreduce_sum(std::span<const float>(f), std::span<float>(recv));
            req.wait();
            break;
          }
          case collective::group_allreduce:
            w.group().allreduce_sum(std::span<float>(f));
            break;
          case collective::group_broadcast:
            w.group().broadcast(std::span<float>(f), 0);
            break;
        }
        if (!my_group_disagrees) {
          out[static_cast<std::size_t>(w.rank())] = completed;
          w.barrier();
        }
      } catch (const tether::aborted&) {
        if (out[static_cast<std::size_t>(w.rank())] == none)
          out[static_cast<std::size_t>(w.rank())] = saw_aborted;
        throw;
      } catch (const tether::error&) {
        out[static_cast<std::size_t>(w.rank())] = saw_error;
        throw;
      } catch (...) {
        out[static_cast<std::size_t>(w.rank())] = saw_other;
        throw;
      }
    });
  } catch (const tether::error& e) {
    threw_error = true;
    what = e.what();
  } catch (...) {
  }
  REQUIRE(threw_error);
  CHECK_THAT(what, Catch::Contains("sizes differ"));
  for (int r = 0; r < 4; ++r) {
    CAPTURE(r);
    const bool in_disagreeing_group = !grouped || (r / 2 == odd_one / 2);
    const int o = out[static_cast<std::size_t>(r)];
    if (in_disagreeing_group) {
      CHECK(o == saw_error);
    } else {
      // The other group's collective is correct: it completes, or is interrupted by the team's abort when the
      // failure comes first. Either way that worker does not see a size error it had no part in.
      CHECK((o == completed || o == saw_aborted));
    }
  }
}
