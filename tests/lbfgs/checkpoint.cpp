// Checkpoints of Sandblaster L-BFGS on the thread team (docs/algorithms/sandblaster_lbfgs.md#checkpoints).
// The reference is always the uninterrupted run (no checkpoint options): a run cut at iteration k with
// checkpoints, then a fresh minimize resuming from them, must give the reference's x and g bit for bit and
// the same per-iteration records (the wall times aside), whether the cut is a max_iterations stop or a
// checkpoint the run went on from. Damaged and mismatched files are a tether::error on every worker, with x
// unchanged.

#include <tether/algo/lsgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/fnv1a.hpp>
#include <tether/lbfgs/minimize.hpp>
#include <tether/problems/logistic.hpp>
#include <tether/problems/rosenbrock.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../common/checkpoint_files.hpp"

namespace fs = std::filesystem;

namespace {

/// A fresh directory for one test's files (tether_test::scratch_dir's), removed at the end.
struct scratch_dir {
  fs::path dir;
  explicit scratch_dir(const char* name)
      : dir(tether_test::scratch_dir(std::string("tether_lbfgs_ck_") + name)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  [[nodiscard]] std::string stem(const char* name) const { return (dir / name).string(); }
};

template <class T>
struct run_output {
  tether::lbfgs::result r;
  std::vector<T> x, g;
  std::string error;  // the worker's exception, if any
  bool failed = false;
  bool not_invalid_input = false;  // it was not a tether::error (a runtime_error, aborted...)
};

/// minimize on p worker threads from x0; every worker's output (errors caught in the worker, checked by the
/// caller on this thread).
template <class T, class O>
std::vector<run_output<T>> run_team(int p, O& problem, const std::vector<T>& x0,
                                    const tether::lbfgs::options& o) {
  std::vector<run_output<T>> out(static_cast<std::size_t>(p));
  tether::team team(p);
  team.run([&](tether::team::worker& w) {
    auto& mine = out[static_cast<std::size_t>(w.rank())];
    mine.x = x0;
    mine.g.assign(x0.size(), T(0));
    try {
      mine.r = tether::lbfgs::minimize(tether::exec::serial{}, w, problem, mine.x, mine.g, o);
    } catch (const tether::error& e) {
      mine.failed = true;
      mine.error = e.what();
    } catch (const std::exception& e) {
      mine.failed = true;
      mine.not_invalid_input = true;
      mine.error = e.what();
    }
  });
  return out;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// The resumed run against the reference: x, g, the counters and every iteration record (wall times aside).
template <class T>
void check_same_run(const std::vector<run_output<T>>& resumed, const run_output<T>& ref) {
  for (const auto& w : resumed) {
    REQUIRE_FALSE(w.failed);
    CHECK(same_bits(w.x, ref.x));
    CHECK(same_bits(w.g, ref.g));
    CHECK(w.r.status == ref.r.status);
    CHECK(w.r.iterations == ref.r.iterations);
    CHECK(w.r.function_evaluations == ref.r.function_evaluations);
    CHECK(w.r.restarts == ref.r.restarts);
    CHECK(w.r.pairs_skipped == ref.r.pairs_skipped);
    CHECK(w.r.portions == ref.r.portions);
    CHECK(std::memcmp(&w.r.f, &ref.r.f, sizeof(double)) == 0);
    CHECK(std::memcmp(&w.r.gradient_norm, &ref.r.gradient_norm, sizeof(double)) == 0);
    REQUIRE(w.r.history.size() == ref.r.history.size());
    for (std::size_t i = 0; i < ref.r.history.size(); ++i) {
      const auto& a = w.r.history[i];
      const auto& b = ref.r.history[i];
      INFO("iteration " << b.iteration);
      CHECK(a.iteration == b.iteration);
      CHECK(std::memcmp(&a.f, &b.f, sizeof(double)) == 0);
      CHECK(std::memcmp(&a.gradient_norm, &b.gradient_norm, sizeof(double)) == 0);
      CHECK(std::memcmp(&a.step, &b.step, sizeof(double)) == 0);
      CHECK(a.evaluations == b.evaluations);
      CHECK(a.portions == b.portions);
      CHECK(a.restarted == b.restarted);
      CHECK(a.pair_skipped == b.pair_skipped);
    }
  }
}

const tether::problems::logistic<double> logit({.samples = 900, .features = 13, .l2 = 1e-3, .seed = 7});

tether::lbfgs::options base_options() {
  tether::lbfgs::options o;
  o.history = 4;
  o.epsilon = 1e-14;  // not reached in 18 iterations: every run stops at max_iterations
  o.past = 3;         // the window is part of the coordinator's state
  o.portions = 7;
  o.shards = 3;
  o.timeout = 60.0;
  return o;
}

/// Every worker failed with tether::error, `own` (its file's problem) on worker `rank`, and x is unchanged.
void check_refused(const std::vector<run_output<double>>& out, const std::vector<double>& x0, int rank,
                   const std::string& file, const std::string& what) {
  for (std::size_t r = 0; r < out.size(); ++r) {
    INFO("worker " << r << ": " << out[r].error);
    REQUIRE(out[r].failed);
    CHECK_FALSE(out[r].not_invalid_input);
    CHECK(same_bits(out[r].x, x0));
    if (static_cast<int>(r) == rank) {
      CHECK(out[r].error.find(file) != std::string::npos);
      CHECK(out[r].error.find(what) != std::string::npos);
    }
  }
}

}  // namespace

TEST_CASE("A Sandblaster L-BFGS run resumed from its checkpoints is bit-identical to the uninterrupted one",
          "[lbfgs][checkpoint]") {
  const int p = GENERATE(1, 3);
  INFO("workers " << p);
  scratch_dir dir(p == 1 ? "resume1" : "resume3");
  const std::vector<double> x0(logit.dimension(), 0.0);
  auto o = base_options();
  o.max_iterations = 18;
  const auto ref = run_team(p, logit, x0, o);
  REQUIRE_FALSE(ref[0].failed);
  REQUIRE(ref[0].r.iterations == 18);

  SECTION("cut by max_iterations at a checkpoint") {
    auto first = o;
    first.max_iterations = 12;
    first.checkpoint = {.path = dir.stem("ck"), .every = 4};
    const auto cut = run_team(p, logit, x0, first);
    REQUIRE_FALSE(cut[0].failed);
    REQUIRE(cut[0].r.iterations == 12);
    for (int r = 0; r < p; ++r) CHECK(fs::exists(tether::lbfgs::checkpoint_file(dir.stem("ck"), r)));

    auto second = o;
    second.checkpoint.resume_from = dir.stem("ck");
    std::vector<std::size_t> seen;
    second.on_iteration = [&](const tether::lbfgs::iteration_record& it) { seen.push_back(it.iteration); };
    check_same_run(run_team(p, logit, x0, second), ref[0]);
    REQUIRE(seen.size() == 6);  // only the iterations this run did
    CHECK(seen.front() == 13);
  }

  SECTION("the last checkpoint before the run went on") {
    auto first = o;
    first.max_iterations = 10;  // writes at 4 and 8, then goes on to 10 as a crashed run would have
    first.checkpoint = {.path = dir.stem("ck"), .every = 4};
    REQUIRE_FALSE(run_team(p, logit, x0, first)[0].failed);

    auto second = o;
    second.checkpoint = {.path = dir.stem("again"), .every = 5, .resume_from = dir.stem("ck")};  // from 8
    check_same_run(run_team(p, logit, x0, second), ref[0]);
    // The resumed run writes its own checkpoints (iteration 15) under its path.
    auto third = o;
    third.checkpoint.resume_from = dir.stem("again");
    check_same_run(run_team(p, logit, x0, third), ref[0]);
  }

  SECTION("a resume with a larger max_iterations stops there; one already past it stops at once") {
    auto first = o;
    first.max_iterations = 8;
    first.checkpoint = {.path = dir.stem("ck"), .every = 8};
    const auto cut = run_team(p, logit, x0, first);
    REQUIRE_FALSE(cut[0].failed);
    auto again = o;
    again.max_iterations = 8;
    again.checkpoint.resume_from = dir.stem("ck");
    const auto same = run_team(p, logit, x0, again);
    REQUIRE_FALSE(same[0].failed);
    CHECK(same[0].r.status == tether::lbfgs::outcome::max_iterations);
    CHECK(same[0].r.iterations == 8);
    CHECK(same_bits(same[0].x, cut[0].x));
    CHECK(same_bits(same[0].g, cut[0].g));
  }
}

TEST_CASE("Sandblaster L-BFGS resumes bit-identically in float, through restarts, from every checkpoint",
          "[lbfgs][checkpoint]") {
  // Rosenbrock in float, run until rounding stops it: its last iterations restart from steepest descent after
  // failed line searches, and the run ends with line_search_failed. Cuts all along, and just before the
  // restarts.
  scratch_dir dir("float");
  tether::problems::rosenbrock<float> rb(12);
  const std::vector<float> x0(rb.dimension(), -1.0f);
  tether::lbfgs::options o;
  o.history = 3;
  o.epsilon = 1e-30;
  o.max_iterations = 400;
  o.shards = 2;
  o.timeout = 60.0;
  const auto ref = run_team(2, rb, x0, o);
  REQUIRE_FALSE(ref[0].failed);
  REQUIRE(ref[0].r.status == tether::lbfgs::outcome::line_search_failed);
  REQUIRE(ref[0].r.restarts > 0);
  const std::size_t n = ref[0].r.iterations;
  REQUIRE(n > 10);
  std::vector<std::size_t> cuts;
  for (std::size_t k = 3; k + 3 < n; k += 17) cuts.push_back(k);
  for (std::size_t k = n - 3; k < n; ++k) cuts.push_back(k);
  for (const std::size_t k : cuts) {
    INFO("cut at iteration " << k);
    auto first = o;
    first.max_iterations = k;
    first.checkpoint = {.path = dir.stem("ck"), .every = k};
    REQUIRE_FALSE(run_team(2, rb, x0, first)[0].failed);
    auto second = o;
    second.checkpoint.resume_from = dir.stem("ck");
    check_same_run(run_team(2, rb, x0, second), ref[0]);
  }
}

TEST_CASE("A damaged or mismatched Sandblaster L-BFGS checkpoint fails on every worker, x unchanged",
          "[lbfgs][checkpoint]") {
  scratch_dir dir("damaged");
  const std::vector<double> x0(logit.dimension(), 0.25);
  auto o = base_options();
  o.max_iterations = 6;
  o.checkpoint = {.path = dir.stem("ck"), .every = 3};
  REQUIRE_FALSE(run_team(3, logit, x0, o)[0].failed);  // files of iteration 6
  auto early = o;
  early.max_iterations = 3;
  early.checkpoint.path = dir.stem("early");
  REQUIRE_FALSE(run_team(3, logit, x0, early)[0].failed);  // files of iteration 3

  auto resume = base_options();
  resume.max_iterations = 10;
  resume.checkpoint.resume_from = dir.stem("ck");
  const std::string f1 = tether::lbfgs::checkpoint_file(dir.stem("ck"), 1);
  const std::string f0 = tether::lbfgs::checkpoint_file(dir.stem("ck"), 0);
  const auto good1 = tether_test::bytes_of(f1);
  const auto good0 = tether_test::bytes_of(f0);
  REQUIRE(good1.size() > 64);

  SECTION("missing") {
    fs::remove(f1);
    check_refused(run_team(3, logit, x0, resume), x0, 1, f1, "cannot open");
  }
  SECTION("truncated") {
    tether_test::write_bytes(f1, std::vector<char>(good1.begin(), good1.end() - 9));
    check_refused(run_team(3, logit, x0, resume), x0, 1, f1, "truncated");
  }
  SECTION("a flipped byte") {
    auto bad = good1;
    bad[bad.size() / 2] ^= 0x10;
    tether_test::write_bytes(f1, bad);
    check_refused(run_team(3, logit, x0, resume), x0, 1, f1, "checksum");
  }
  SECTION("the coordinator's file damaged") {
    auto bad = good0;
    bad[bad.size() - 5] ^= 0x01;
    tether_test::write_bytes(f0, bad);
    check_refused(run_team(3, logit, x0, resume), x0, 0, f0, "checksum");
  }
  SECTION("workers at different iterations") {
    fs::copy_file(tether::lbfgs::checkpoint_file(dir.stem("early"), 2),
                  tether::lbfgs::checkpoint_file(dir.stem("ck"), 2), fs::copy_options::overwrite_existing);
    const auto out = run_team(3, logit, x0, resume);
    check_refused(out, x0, 2, "", "the iteration of their checkpoints");
  }
  SECTION("another history m") {
    auto other = resume;
    other.history = 5;
    check_refused(run_team(3, logit, x0, other), x0, 1, f1, "history (m)");
  }
  SECTION("other options that decide the iterates") {
    auto other = resume;
    other.line_search.gtol = 0.8;
    check_refused(run_team(3, logit, x0, other), x0, 1, f1, "other options");
  }
  SECTION("another shard count") {
    auto other = resume;
    other.shards = 2;
    check_refused(run_team(3, logit, x0, other), x0, 1, f1, "the shard count");
  }
  SECTION("another worker count") {
    check_refused(run_team(2, logit, x0, resume), x0, 1, f1,
                  "the worker count = 3, this run has the worker count = 2");
  }
  SECTION("another n") {
    const tether::problems::logistic<double> wider({.samples = 900, .features = 14, .l2 = 1e-3, .seed = 7});
    const std::vector<double> y0(wider.dimension(), 0.25);
    const auto out = run_team(3, wider, y0, resume);
    for (std::size_t r = 0; r < out.size(); ++r) {
      INFO(out[r].error);
      REQUIRE(out[r].failed);
      CHECK(same_bits(out[r].x, y0));
      CHECK(out[r].error.find("n = ") != std::string::npos);
    }
  }
  SECTION("a tether::optimizer checkpoint") {
    const std::size_t n = logit.dimension();
    tether::team team(3);
    team.run([&](tether::team::worker& w) {
      std::vector<double> x(n, 0.0);
      tether::algo::lsgd<tether::team::worker, double> opt(w, n, {.lr = 0.1});
      opt.save(tether::lbfgs::checkpoint_file(dir.stem("ck"), w.rank()), x);
    });
    check_refused(run_team(3, logit, x0, resume), x0, 1, f1, "not a Sandblaster L-BFGS checkpoint");
  }
  SECTION("given to tether::optimizer") {
    const std::size_t n = logit.dimension();
    std::vector<std::string> errors(3);
    std::vector<std::vector<double>> xs(3, std::vector<double>(n, 0.5));
    tether::team team(3);
    team.run([&](tether::team::worker& w) {
      const auto me = static_cast<std::size_t>(w.rank());
      tether::algo::lsgd<tether::team::worker, double> opt(w, n, {.lr = 0.1});
      try {
        opt.load(tether::lbfgs::checkpoint_file(dir.stem("ck"), w.rank()), xs[me]);
      } catch (const tether::error& e) {
        errors[me] = e.what();
      }
    });
    for (std::size_t r = 0; r < 3; ++r) {
      INFO(errors[r]);
      CHECK(errors[r].find("another algorithm") != std::string::npos);
      CHECK(xs[r] == std::vector<double>(n, 0.5));
    }
  }
}

TEST_CASE("Bad checkpoint options name the option and its value", "[lbfgs][checkpoint]") {
  const std::vector<double> x0(logit.dimension(), 0.0);
  auto o = base_options();
  o.checkpoint.every = 5;
  auto out = run_team(2, logit, x0, o);
  for (const auto& w : out) {
    REQUIRE(w.failed);
    CHECK(w.error.find("checkpoint.every = 5 needs a checkpoint.path") != std::string::npos);
  }
  o.checkpoint = {.path = "somewhere", .every = 0};
  out = run_team(2, logit, x0, o);
  for (const auto& w : out) {
    REQUIRE(w.failed);
    CHECK(w.error.find("checkpoint.path = \"somewhere\" needs checkpoint.every > 0") != std::string::npos);
  }
}

TEST_CASE("A checkpoint that cannot be written fails the run on every worker, x unchanged",
          "[lbfgs][checkpoint]") {
  const std::vector<double> x0(logit.dimension(), 0.0);
  auto o = base_options();
  o.max_iterations = 5;
  const std::string stem = (fs::temp_directory_path() / "tether_lbfgs_no_such_dir" / "ck").string();
  o.checkpoint = {.path = stem, .every = 2};
  const auto out = run_team(3, logit, x0, o);
  for (const auto& w : out) {
    INFO(w.error);
    REQUIRE(w.failed);
    CHECK(same_bits(w.x, x0));
    CHECK(w.error.find(stem) != std::string::npos);  // the writer's error, or the abort that carries it
    CHECK(w.error.find("cannot create") != std::string::npos);
  }
}

namespace {

/// Rewrites a checkpoint file's checksum for its (modified) payload: the container's header is 32 bytes, the
/// checksum at 24 (core/checkpoint.hpp).
void reseal(std::vector<char>& file) {
  const auto* payload = reinterpret_cast<const unsigned char*>(file.data()) + 32;
  const std::uint64_t sum = tether::detail::fnv1a(std::span<const unsigned char>(payload, file.size() - 32));
  std::memcpy(file.data() + 24, &sum, sizeof sum);
}

}  // namespace

TEST_CASE("Damaged fields behind a valid checksum are refused on every worker or resumed, never a crash",
          "[lbfgs][checkpoint]") {
  scratch_dir dir("fields");
  const std::vector<double> x0(logit.dimension(), 0.0);
  auto o = base_options();
  o.max_iterations = 6;
  o.checkpoint = {.path = dir.stem("ck"), .every = 6};
  REQUIRE_FALSE(run_team(2, logit, x0, o)[0].failed);
  auto resume = base_options();
  resume.max_iterations = 8;
  resume.checkpoint.resume_from = dir.stem("ck");
  const std::string f0 = tether::lbfgs::checkpoint_file(dir.stem("ck"), 0);
  const auto good = tether_test::bytes_of(f0);
  const std::size_t iterations = 6, record = 10 * 8 + 1;
  // The count of iteration records: before the records and the four counters at the end.
  SECTION("the count of iteration records") {
    auto bad = good;
    const std::size_t at = bad.size() - 4 * 8 - iterations * record - 8;
    const std::uint64_t huge = ~std::uint64_t{0} >> 4;
    std::memcpy(bad.data() + at, &huge, sizeof huge);
    reseal(bad);
    tether_test::write_bytes(f0, bad);
    check_refused(run_team(2, logit, x0, resume), x0, 0, f0, "iteration records");
  }
  SECTION("one byte at a time, across the payload") {
    int refused = 0, resumed = 0;
    for (std::size_t at = 32; at < good.size(); at += (good.size() - 32) / 29) {
      auto bad = good;
      bad[at] ^= 0x5a;
      reseal(bad);
      tether_test::write_bytes(f0, bad);
      const auto out = run_team(2, logit, x0, resume);
      INFO("byte " << at << ": " << out[0].error << " / " << out[1].error);
      CHECK(out[0].failed == out[1].failed);
      CHECK_FALSE(out[0].not_invalid_input);
      CHECK_FALSE(out[1].not_invalid_input);
      (out[0].failed ? refused : resumed) += 1;
    }
    CHECK(refused > 0);
    CHECK(resumed > 0);  // the bytes of x, g and the history are data: any value is a valid checkpoint
  }
}
