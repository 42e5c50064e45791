// Catch2's runner for tests that run under mpiexec: MPI is initialised around the session, every rank runs
// every test case, and the exit status is the worst over the ranks (so mpiexec fails if any rank failed).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <mpi.h>

#include <string>

#include "tether/comm/mpi.hpp"

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  Catch::Session session;
  session.configData().processName = "mpi rank " + std::to_string(rank);
  int failed = session.run(argc, argv);
  int worst = 0;
  MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
