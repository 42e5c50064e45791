// Catch2's main() and runner, compiled once and linked into every test executable (tether_catch_main).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
