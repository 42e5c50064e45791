// Checkpoints of parameters and buffers in device memory (optimizer::save/load through the execution space's
// host copies), on the CPU: a test execution space whose memory space is not mem::host (tests/common). A run of
// 3 workers saved at step 23 and resumed by new optimizers ends bit-identical to the same run left
// uninterrupted, and to the run on exec::serial with host buffers (the same loops: the reference written
// without any staging); saving copies every buffer to the host and loading copies it back (counted).

#include "support.hpp"
#include "../common/checkpoint_files.hpp"
#include "../common/fake_device.hpp"

#include <tether/core/checkpoint.hpp>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using worker = tether::team::worker;
using tether_test::fake_device;
constexpr int p = 3;
constexpr std::size_t n = 11;
constexpr int steps = 50;
constexpr int cut = 23;

using tether_test::file_of;
using tt::gradient;

/// Steps [from, to) of every worker of Opt on Exec, from the checkpoints in `load_dir` when set, saving into
/// `save_dir` when set (else finishing); the workers' x, step state and pull buffers at the end.
template <class Opt, class Exec>
std::vector<std::vector<float>> run(const typename Opt::options& o, int from, int to, const fs::path* load_dir,
                                    const fs::path* save_dir, tether_test::copies* count = nullptr) {
  tether::team team(p);
  std::vector<std::vector<float>> out(p);
  team.run([&](worker& w) {
    Exec exec{};
    if constexpr (std::is_same_v<Exec, fake_device>) exec.count = count;
    Opt opt(exec, w, n, o);
    std::vector<float> x(n), g(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(w.rank()) - static_cast<float>(i) * 0.3f;
    const auto xv = [&] {
      if constexpr (std::is_same_v<Exec, fake_device>)
        return tether_test::on_device(x);
      else
        return tether::as_view(x);
    };
    const auto gv = [&] {
      if constexpr (std::is_same_v<Exec, fake_device>)
        return tether_test::on_device(g);
      else
        return tether::as_view(g);
    };
    if (load_dir != nullptr) opt.load(file_of(*load_dir, w.rank()), xv());
    for (int t = from; t < to; ++t) {
      const double loss = gradient(x, g, w.rank(), t);
      opt.step(xv(), gv(), loss);
    }
    if (save_dir != nullptr)
      opt.save(file_of(*save_dir, w.rank()), xv());
    else
      opt.finish(xv());
    auto& mine = out[static_cast<std::size_t>(w.rank())];
    mine = x;
    for (std::size_t k = 0; k < Opt::step_type::state_size; ++k)
      mine.insert(mine.end(), opt.state(k).data(), opt.state(k).data() + n);
    for (std::size_t k = 0; k < Opt::pull_type::buffers; ++k)
      mine.insert(mine.end(), opt.target(k).data(), opt.target(k).data() + n);
    mine.push_back(static_cast<float>(opt.stats().steps));
    mine.push_back(static_cast<float>(opt.applied_steps()));
  });
  return out;
}

template <class Step, class Pull>
void check_device_resume(const typename tether::optimizer<Step, Pull, worker>::options& o) {
  using host_opt = tether::optimizer<Step, Pull, worker>;
  using device_opt = tether::optimizer<Step, Pull, worker, fake_device>;
  const fs::path dir = tether_test::scratch_dir("tether_checkpoint_device");
  const auto host = run<host_opt, tether::exec::serial>(o, 0, steps, nullptr, nullptr);
  const auto whole = run<device_opt, fake_device>(o, 0, steps, nullptr, nullptr);
  tether_test::copies saved, loaded;
  (void)run<device_opt, fake_device>(o, 0, cut, nullptr, &dir, &saved);
  const auto resumed = run<device_opt, fake_device>(o, cut, steps, &dir, nullptr, &loaded);
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    const auto me = static_cast<std::size_t>(r);
    REQUIRE(tt::same_bits(resumed[me], whole[me]));
    REQUIRE(tt::same_bits(whole[me], host[me]));
  }
  // Every worker copies x, the step state and the pull's buffers to the host on save and back on load.
  const std::uint64_t buffers = 1 + Step::state_size + Pull::buffers;
  CHECK(saved.to_host >= p * buffers);
  CHECK(loaded.from_host >= p * buffers);
  fs::remove_all(dir);
}

}  // namespace

TEST_CASE("checkpoint in device memory: a resumed run is bit-identical to the uninterrupted one and to the host's",
          "[core][checkpoint][device]") {
  SECTION("LSGD with momentum") {
    check_device_resume<tether::step::momentum, tether::pull::leader>(
        {.lr = 0.05, .step = {.momentum = 0.7f}, .pull = {.period = 4, .strength = 0.3f, .score_window = 3}});
  }
  SECTION("Overlap-Local-SGD with anchor momentum: the average in flight at the cut completes first") {
    check_device_resume<tether::step::sgd, tether::pull::anchor>(
        {.lr = 0.05, .pull = {.period = 5, .alpha = 0.5f, .momentum = 0.3f}});
  }
  SECTION("Adam with EASGD") {
    check_device_resume<tether::step::adam, tether::pull::elastic>({.lr = 0.02, .pull = {.period = 3}});
  }
}
