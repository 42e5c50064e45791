// lbfgs::work_queue's rules, replayed by hand: portions go in order to the least loaded replica up to the
// queue depth; backups go only to idle replicas once nothing is left to hand out and the threshold is met, to
// the outstanding portion with the fewest copies, and never beyond max_copies; the first result of a portion
// counts and every later copy or earlier batch is reported as such; a replica that never answers keeps its
// assignment and gets no more work, and is reported silent after the given age.

#include <tether/lbfgs/work_queue.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

using tether::lbfgs::work_queue;

namespace {

std::vector<work_queue::assignment> schedule(work_queue& q,
                                             work_queue::clock::time_point t = work_queue::clock::now()) {
  std::vector<work_queue::assignment> out;
  q.schedule(out, t);
  return out;
}

}  // namespace

TEST_CASE("work_queue hands portions in order to the least loaded replicas, up to the depth",
          "[lbfgs][work_queue]") {
  work_queue q(3, {.depth = 2, .backups = false});
  q.start(1, 8);
  const auto a = schedule(q);
  REQUIRE(a.size() == 6);  // 3 replicas x depth 2
  const int replicas[] = {0, 1, 2, 0, 1, 2};
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].portion == i);
    CHECK(a[i].replica == replicas[i]);
    CHECK_FALSE(a[i].backup);
  }
  CHECK(schedule(q).empty());
  CHECK(q.done(1, 1, 1) == work_queue::report::first);
  const auto b = schedule(q);
  REQUIRE(b.size() == 1);
  CHECK(b[0].replica == 1);
  CHECK(b[0].portion == 6);
  CHECK(q.done(1, 1, 1) == work_queue::report::duplicate);
  CHECK(q.done(2, 0, 3) == work_queue::report::stale);
  CHECK(q.done_count() == 1);
  CHECK_FALSE(q.complete());
}

TEST_CASE("work_queue backs up outstanding portions on idle replicas only, first result wins",
          "[lbfgs][work_queue]") {
  work_queue q(3,
               {.depth = 1, .backups = true, .backup_threshold = 0.0, .max_copies = 2, .backup_after = 0.0});
  q.start(7, 4);
  auto t0 = work_queue::clock::now();
  auto a = schedule(q, t0);
  REQUIRE(a.size() == 3);  // portions 0, 1, 2 on replicas 0, 1, 2
  CHECK(q.done(0, 7, 0) == work_queue::report::first);
  a = schedule(q, t0 + std::chrono::milliseconds(1));
  REQUIRE(a.size() == 1);  // portion 3 to replica 0: not a backup, the queue was not empty
  CHECK(a[0].portion == 3);
  CHECK_FALSE(a[0].backup);
  // Replica 2 is the slow one. Replicas 0 and 1 finish: the queue is empty, so they get backups of the
  // outstanding portions with the fewest copies, the oldest first: portion 2 (handed out at t0), then 3.
  CHECK(q.done(0, 7, 3) == work_queue::report::first);
  CHECK(q.done(1, 7, 1) == work_queue::report::first);
  a = schedule(q, t0 + std::chrono::milliseconds(2));
  REQUIRE(a.size() == 1);
  CHECK(a[0].backup);
  CHECK(a[0].portion == 2);
  CHECK(a[0].replica == 0);
  CHECK(q.backups() == 1);
  // Portion 2 has its max of 2 copies: nothing more for replica 1.
  CHECK(schedule(q).empty());
  // The backup wins; the slow original comes later and is a duplicate.
  CHECK(q.done(0, 7, 2) == work_queue::report::first);
  CHECK(q.complete());
  CHECK(q.done(2, 7, 2) == work_queue::report::duplicate);
  CHECK(q.done_count() == 4);
}

TEST_CASE("work_queue's backup threshold, and a replica that never answers", "[lbfgs][work_queue]") {
  work_queue q(2,
               {.depth = 1, .backups = true, .backup_threshold = 0.75, .max_copies = 3, .backup_after = 0.0});
  q.start(1, 4);
  const auto t0 = work_queue::clock::now();
  REQUIRE(schedule(q, t0).size() == 2);  // 0 -> r0, 1 -> r1 (r1 dies)
  CHECK(q.done(0, 1, 0) == work_queue::report::first);
  REQUIRE(schedule(q, t0).size() == 1);  // 2 -> r0
  CHECK(q.done(0, 1, 2) == work_queue::report::first);
  REQUIRE(schedule(q, t0).size() == 1);  // 3 -> r0
  CHECK(q.done(0, 1, 3) == work_queue::report::first);
  // 3 of 4 done >= 0.75: r0 is idle and backs up portion 1.
  auto a = schedule(q, t0);
  REQUIRE(a.size() == 1);
  CHECK(a[0].portion == 1);
  CHECK(a[0].backup);
  CHECK(q.done(0, 1, 1) == work_queue::report::first);
  CHECK(q.complete());
  // Next batch: r1 still holds batch 1's portion 1, so it is full (depth 1) and gets nothing.
  q.start(2, 2);
  a = schedule(q, t0);
  REQUIRE(a.size() == 1);
  CHECK(a[0].replica == 0);
  REQUIRE(q.holding(1).size() == 1);
  CHECK(q.holding(1)[0].batch == 1);
  CHECK(q.done(0, 2, 0) == work_queue::report::first);
  CHECK(q.silent(t0 + std::chrono::seconds(10), std::chrono::seconds(5)) == std::vector<int>{1});
  CHECK(q.silent(t0 + std::chrono::seconds(1), std::chrono::seconds(5)).empty());
  a = schedule(q, t0);
  REQUIRE(a.size() == 1);  // portion 1 to r0: r1 is still full
  CHECK(a[0].replica == 0);
  CHECK(a[0].portion == 1);
  // A skipped answer frees r1, which is then idle; but 1 of 2 portions done is below the 0.75 threshold, so
  // it backs nothing up yet.
  q.skipped(1, 1, 1);
  CHECK(q.holding(1).empty());
  CHECK(schedule(q, t0).empty());
}

TEST_CASE("work_queue backs up only portions out longer than backup_after typical times",
          "[lbfgs][work_queue]") {
  using std::chrono::milliseconds;
  work_queue q(2,
               {.depth = 1, .backups = true, .backup_threshold = 0.0, .max_copies = 2, .backup_after = 2.0});
  const auto t0 = work_queue::clock::now();
  q.start(1, 3);
  REQUIRE(schedule(q, t0).size() == 2);                                        // 0 -> r0, 1 -> r1 (slow)
  CHECK(q.done(0, 1, 0, t0 + milliseconds(10)) == work_queue::report::first);  // typical time: 10 ms
  auto a = schedule(q, t0 + milliseconds(10));
  REQUIRE(a.size() == 1);                                                      // 2 -> r0
  CHECK(q.done(0, 1, 2, t0 + milliseconds(20)) == work_queue::report::first);  // 10 ms again
  // r0 is idle; portion 1 is out for 20 ms, not more than 2 x 10 ms: no backup yet.
  CHECK(schedule(q, t0 + milliseconds(20)).empty());
  // The coordinator would wake up for it at 2 x 10 ms after portion 1 was handed out.
  REQUIRE(q.backup_due().has_value());
  CHECK(*q.backup_due() == t0 + milliseconds(20));
  CHECK(q.holders(1, 1) == std::vector<int>{1});
  a = schedule(q, t0 + milliseconds(21));
  REQUIRE(a.size() == 1);
  CHECK(a[0].backup);
  CHECK(a[0].portion == 1);
  CHECK(a[0].replica == 0);
  CHECK(q.holders(1, 1) == std::vector<int>{0, 1});
  CHECK_FALSE(q.backup_due().has_value());  // no idle replica left
  // Without any result yet there is no typical time, hence no backup.
  q.start(2, 1);
  work_queue fresh(2, {.depth = 1, .backups = true, .backup_after = 0.5});
  fresh.start(1, 1);
  REQUIRE(schedule(fresh, t0).size() == 1);
  CHECK(schedule(fresh, t0 + std::chrono::seconds(100)).empty());
}
