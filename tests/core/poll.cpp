// tether::detail::poll_until, the one bounded wait of comm::mpi and comm::nccl: it returns as soon as the
// poll reports completion, throws tether::timeout with on_timeout()'s message once the limit has passed (and
// not before), lets an error of the poll win over the timeout, and waits without limit when the timeout is
// <= 0. The clock is the test's own std::chrono::steady_clock.

#include <chrono>
#include <stdexcept>
#include <string>

#include "support.hpp"

#include <tether/core/poll.hpp>

namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

}  // namespace

TEST_CASE("poll_until returns when the poll completes, without calling on_timeout", "[core][poll]") {
  int polls = 0;
  int timeouts = 0;
  tether::detail::poll_until(
      10.0, [&] { return ++polls == 5000; },
      [&] {
        ++timeouts;
        return std::string("never");
      });
  CHECK(polls == 5000);
  CHECK(timeouts == 0);
}

TEST_CASE("poll_until throws tether::timeout with on_timeout's message after the limit", "[core][poll]") {
  int timeouts = 0;
  const auto t0 = clock_type::now();
  CHECK_THROWS_MATCHES(tether::detail::poll_until(
                           0.05, [] { return false; },
                           [&] {
                             ++timeouts;
                             return std::string("tether: op did not complete within 0.05 s");
                           }),
                       tether::timeout, Catch::Message("tether: op did not complete within 0.05 s"));
  const double waited = seconds_since(t0);
  CHECK(timeouts == 1);
  CHECK(waited >= 0.05);
  CHECK(waited < 5.0);
  // tether::timeout is a tether::runtime_error: callers that catch failures while running catch it too.
  CHECK_THROWS_AS(tether::detail::poll_until(0.01, [] { return false; }, [] { return std::string("t"); }),
                  tether::runtime_error);
}

TEST_CASE("poll_until: an error of the poll wins over the timeout", "[core][poll]") {
  int polls = 0;
  CHECK_THROWS_MATCHES(tether::detail::poll_until(
                           0.0001,
                           [&]() -> bool {
                             if (++polls == 3) throw tether::runtime_error("tether: the peer failed");
                             return false;
                           },
                           [] { return std::string("timeout"); }),
                       tether::runtime_error, Catch::Message("tether: the peer failed"));
}

TEST_CASE("poll_until waits without limit when the timeout is <= 0", "[core][poll]") {
  for (const double limit : {0.0, -1.0}) {
    const auto t0 = clock_type::now();
    int timeouts = 0;
    // A poll that completes only after 0.1 s: longer than any limit a positive timeout of 0 would mean.
    tether::detail::poll_until(
        limit, [&] { return seconds_since(t0) > 0.1; },
        [&] {
          ++timeouts;
          return std::string("no");
        });
    CHECK(timeouts == 0);
    CHECK(seconds_since(t0) > 0.1);
  }
}
