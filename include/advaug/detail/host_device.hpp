// ADVAUG_HOST_DEVICE marks the functions that a CUDA kernel calls too, so that host loops and
// kernels share one definition (backend/element_math.hpp, the counter-based random start of
// detail/random.hpp). Empty outside nvcc.
#pragma once

#if defined(__CUDACC__)
#define ADVAUG_HOST_DEVICE __host__ __device__
#else
#define ADVAUG_HOST_DEVICE
#endif
