#pragma once
/// \file
/// Sandblaster L-BFGS on comm::mpi: lbfgs::minimize, algo::sandblaster_lbfgs and the MPI channel they open on
/// a comm::mpi (link tether::mpi). Every rank calls minimize with the same options, objective data and start
/// point.

#include "tether/algo/sandblaster_lbfgs.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/lbfgs/minimize.hpp"
#include "tether/lbfgs/mpi_channel.hpp"
