// libFuzzer target: optimizer::load over arbitrary checkpoint files (core/checkpoint.hpp). The promise
// (docs/reliability.md#checkpoints): a file is either restored completely or refused with tether::error, and a
// refused file leaves the optimizer and x exactly as they were. Any other exception, crash, sanitizer report or
// change on refusal is a failure. With the argument `--make-corpus DIR`, writes valid checkpoints (LSGD with
// Adam, on a one-worker communicator) into DIR as the seed corpus instead.

#include <tether/tether.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "file_input.hpp"

namespace {

/// A communicator of one worker with no threads: every collective is the identity.
class solo {
 public:
  int rank() const { return 0; }
  int size() const { return 1; }
  void barrier() {}
  template <class T>
  void allreduce_sum(std::span<T>) {}
  template <class T>
  tether::request iallreduce_sum(std::span<const T> send, std::span<T> recv) {
    std::memcpy(recv.data(), send.data(), send.size_bytes());
    return {};
  }
  template <class T>
  void broadcast(std::span<T>, int) {}
  tether::election min_loc(double score) { return {score, score == score && score - score == 0.0 ? 0 : -1}; }
  solo& group() { return *this; }
  const tether::comm_counters& counters() const { return counters_; }

 private:
  tether::comm_counters counters_{};
};

constexpr std::size_t n = 12;
using opt_t = tether::optimizer<tether::step::adam, tether::pull::leader, solo>;
const opt_t::options options{.lr = 0.01, .pull = {.period = 2, .score_window = 3}};

std::string scratch_file() {
  return std::string("/tmp/tether_fuzz_checkpoint_") + std::to_string(::getpid()) + ".ckpt";
}

void make_corpus(const std::string& dir) {
  for (int steps : {0, 1, 3, 8}) {
    solo comm;
    opt_t opt(comm, n, options);
    std::vector<float> x(n, 0.5f), g(n);
    for (int t = 0; t < steps; ++t) {
      for (std::size_t i = 0; i < n; ++i) g[i] = x[i] - static_cast<float>(i) * 0.1f;
      opt.step(x, g, 1.0 / (t + 1));
    }
    opt.save(dir + "/steps" + std::to_string(steps), x);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  fuzz::make_corpus_if_asked(*argc, *argv, make_corpus);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = scratch_file();
  fuzz::write_input(path, data, size);

  solo comm;
  opt_t opt(comm, n, options);
  std::vector<float> x(n, 0.25f), g(n, 0.125f);
  opt.step(x, g, 2.0);
  const std::vector<float> x_before = x;
  const std::vector<float> m_before(opt.state(0).data(), opt.state(0).data() + n);
  const auto steps_before = opt.stats().steps;
  try {
    opt.load(path, x);
  } catch (const tether::error&) {
    // Refused: nothing may have changed.
    if (std::memcmp(x.data(), x_before.data(), n * sizeof(float)) != 0 ||
        std::memcmp(opt.state(0).data(), m_before.data(), n * sizeof(float)) != 0 || opt.stats().steps != steps_before) {
      std::fprintf(stderr, "checkpoint_load: a refused checkpoint changed the optimizer or x\n");
      std::abort();
    }
    return 0;
  }
  // Accepted: the optimizer must still step.
  for (std::size_t i = 0; i < n; ++i) g[i] = 0.01f;
  opt.step(x, g, 1.0);
  return 0;
}
