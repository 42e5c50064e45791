#pragma once
// What the libFuzzer targets over files share: the input written to a file of the target's own, and the
// `--make-corpus DIR` argument that writes the seed corpus instead of fuzzing.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fuzz {

/// Writes the input to `path` (aborts if it cannot: the target could test nothing).
inline void write_input(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size != 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

/// From LLVMFuzzerInitialize: with `--make-corpus DIR` among the arguments, `make(DIR)` and exit.
inline void make_corpus_if_asked(int argc, char** argv, void (*make)(const std::string&)) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--make-corpus") == 0) {
      make(argv[i + 1]);
      std::exit(0);
    }
}

}  // namespace fuzz
