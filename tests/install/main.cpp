// Uses tether like a user's program would: include a header, throw and catch tether::error.
#include <cstdio>
#include <string>
#include <tether/core/error.hpp>

int main() {
  try {
    throw tether::error("tether: period must be positive, got 0");
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find("period") == std::string::npos) return 1;
    std::puts("tether consumer: ok");
    return 0;
  }
  return 1;
}
