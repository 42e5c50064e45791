// libFuzzer target over tether_demo's command-line parser (examples/fashion_mnist/demo_args.hpp, parse_args):
// the input, split at NUL bytes, is argv[1..] (argv[0] is "tether_demo"). What must hold, for any input
// (docs/reliability.md):
//   - parse_args either returns or throws fmnist::cli::usage_error with a non-empty message (nothing else, no
//     crash, no sanitizer report, no leak);
//   - returned settings are within the documented ranges (--help): workers 1..256, epochs 1..1000, period >= 1,
//     batch 1..60000, lr in (0, 100], momentum in [0, 1), leader jump in [0, 1], bits 0 or 1..8, non-empty
//     and different CSV and PNG paths, group size dividing the workers for lsgd-grouped;
//   - the values of --workers, --epochs, --batch, --seed, --csv and --png (their last occurrence) are the ones
//     given, as a decimal parse written here reads them.
// Built and run by scripts/fuzz.sh (clang++ -fsanitize=fuzzer,address,undefined); any violation aborts.
#include "demo_args.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "demo_args fuzz: %s\n", what);
  std::abort();
}

/// `text` as an unsigned decimal number (digits only, leading zeros allowed, below 2^64), or nothing.
std::optional<std::uint64_t> decimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

/// The last value given to `flag` in argv[1..] (read as flag/value pairs, as a successful parse read them).
std::optional<std::string_view> last_value(const std::vector<std::string>& args, std::string_view flag) {
  std::optional<std::string_view> v;
  for (std::size_t i = 0; i + 1 < args.size(); i += 2)
    if (args[i] == flag) v = args[i + 1];
  return v;
}

void expect_number(const std::vector<std::string>& args, std::string_view flag, std::uint64_t parsed) {
  const auto v = last_value(args, flag);
  if (!v) return;
  const auto want = decimal(*v);
  if (!want || *want != parsed) violated("a parsed number is not the value given");
}

void expect_text(const std::vector<std::string>& args, std::string_view flag, const std::string& parsed) {
  const auto v = last_value(args, flag);
  if (v && *v != parsed) violated("a parsed path is not the value given");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args;  // argv[1..]
  if (size > 0) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    for (;;) {
      const std::size_t nul = rest.find('\0');
      args.emplace_back(rest.substr(0, nul));
      if (nul == std::string_view::npos) break;
      rest.remove_prefix(nul + 1);
    }
  }
  std::vector<const char*> argv{"tether_demo"};
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);

  fmnist::demo::settings s;
  try {
    s = fmnist::demo::parse_args(static_cast<int>(argv.size() - 1), argv.data());
  } catch (const fmnist::cli::usage_error& e) {
    if (e.message.empty()) violated("a usage_error without a message");
    return 0;
  } catch (...) {
    violated("parse_args threw something other than usage_error");
  }
  const fmnist::train_options& t = s.train;
  if (t.workers < 1 || t.workers > 256) violated("workers out of 1..256");
  if (t.epochs < 1 || t.epochs > 1000) violated("epochs out of 1..1000");
  if (t.period < 1) violated("period below 1");
  if (t.batch < 1 || t.batch > 60000) violated("batch out of 1..60000");
  if (!(t.lr > 0.0 && t.lr <= 100.0)) violated("lr out of (0, 100]");
  if (!(t.momentum >= 0.0f && t.momentum < 1.0f)) violated("momentum out of [0, 1)");
  if (!(t.leader_jump >= 0.0f && t.leader_jump <= 1.0f)) violated("leader jump out of [0, 1]");
  if (t.bits > 8) violated("bits out of 0..8");
  if (s.csv.empty() || s.png.empty() || s.data_dir.empty()) violated("an empty path");
  if (s.csv == s.png) violated("the CSV and PNG paths are the same");
  if (s.limit < 1) violated("limit below 1");
  if (t.algo == fmnist::algorithm::lsgd_grouped && (t.group_size < 1 || t.workers % t.group_size != 0))
    violated("group size does not divide the workers");
  if (args.size() % 2 != 0) violated("an odd number of arguments parsed");
  expect_number(args, "--workers", static_cast<std::uint64_t>(t.workers));
  expect_number(args, "--epochs", t.epochs);
  expect_number(args, "--batch", t.batch);
  expect_number(args, "--seed", t.seed);
  expect_text(args, "--csv", s.csv);
  expect_text(args, "--png", s.png);
  return 0;
}
