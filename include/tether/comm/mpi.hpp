#pragma once
/// \file
/// comm::mpi: one worker per MPI rank, with the collectives of the thread team done by real MPI calls.
/// Opt-in header (component tether::mpi); link MPI::MPI_CXX or use the tether::mpi target.
///
///     int main(int argc, char** argv) {
///       tether::comm::mpi_environment env(argc, argv);      // MPI_Init_thread, or nothing if already done
///       tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 60.0});
///       tether::algo::lsgd<tether::comm::mpi> opt(comm, n, {.lr = 0.05});
///       ... opt.step(x, g, loss) ...
///     }
///
/// The communicator never calls MPI_Init: it duplicates the communicator it is given (so its traffic never
/// mixes with the caller's), sets MPI_ERRORS_RETURN on the duplicate, checks every return code and turns
/// failures into tether::runtime_error naming the MPI call. Blocking collectives are run as their
/// non-blocking versions polled with MPI_Test, so a rank that died makes the others fail after `timeout`
/// seconds instead of hanging (timeout <= 0 uses the plain blocking calls and waits forever).
/// After a timeout the communicator is unusable: report the error and end the program (MPI_Abort).
///
/// Byte counters follow the thread team's conventions (payload bytes, per worker, see docs/mpi.md):
/// all-reduce (blocking or not) 2*(n - n_r)*s sent and received, n_r = this rank's share of a
/// reduce-scatter; broadcast: the root sends (p-1)*n*s, every other rank receives n*s; election 12 bytes
/// each way; barriers and consistency checks are not counted. A group's traffic counts on its parent.
///
/// This is the public header; the parts live in comm/mpi/: support.hpp (datatypes, errors, chunks),
/// options.hpp (mpi_options), environment.hpp (mpi_environment), communicator.hpp (comm::mpi), store.hpp (the
/// one-sided store in an MPI window).

#include "tether/comm/mpi/store.hpp"
#include "tether/comm/mpi/communicator.hpp"
#include "tether/comm/mpi/environment.hpp"
#include "tether/comm/mpi/options.hpp"
#include "tether/comm/mpi/support.hpp"
