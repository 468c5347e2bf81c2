// What this CPU can do, and host kernels compiled for it.
//
// advaug is compiled for the baseline of the user's target (x86-64 without flags: SSE2), so a
// loop that gathers (bilinear sampling) or rounds (floor) runs one element at a time there.
// A kernel marked ADVAUG_TARGET_AVX2 is compiled for AVX2 as well, from the same source, and
// advaug calls that version when avx2_kernels() says the CPU has it. Only loops whose every
// element is computed by the same IEEE operations in the same order are dispatched this way:
// AVX2 changes how many elements one instruction computes, never a result's bits, so results
// do not depend on the CPU. FMA is a separate target and is not enabled (contracting a
// multiply and an add would change the rounding).
//
// With a compiler other than GCC or clang, or off x86, both versions are the baseline one and
// avx2_kernels() is false. Defining ADVAUG_NO_ISA_DISPATCH (in every translation unit, like the
// backend's macros) does the same on x86.
#pragma once

#include <atomic>

namespace advaug::backend {

/// The instruction-set extensions of this CPU that decide which kernels are fast.
struct cpu_features {
    bool avx2 = false;
    bool avx512f = false;
};

inline cpu_features host_cpu() {
    cpu_features f;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.avx512f = __builtin_cpu_supports("avx512f");
#endif
    return f;
}

}  // namespace advaug::backend

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(ADVAUG_NO_ISA_DISPATCH)
#define ADVAUG_ISA_DISPATCH 1
#define ADVAUG_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define ADVAUG_TARGET_AVX2
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ADVAUG_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define ADVAUG_ALWAYS_INLINE inline
#endif

namespace advaug::backend::detail {

/// Whether the AVX2 versions may run where the CPU has them: true unless switched off, as
/// tests do to compare the two versions (tests/test_isa_dispatch.cpp).
inline std::atomic<bool>& avx2_kernels_allowed() {
    static std::atomic<bool> allowed{true};
    return allowed;
}

/// Whether this CPU has AVX2 and this build dispatches (asked once per process).
inline bool avx2_kernels_available() {
#ifdef ADVAUG_ISA_DISPATCH
    static const bool yes = host_cpu().avx2;
    return yes;
#else
    return false;
#endif
}

/// Whether to call the AVX2 versions of the dispatched kernels.
inline bool avx2_kernels() {
    return avx2_kernels_available() && avx2_kernels_allowed().load(std::memory_order_relaxed);
}

/// The two versions of a dispatched kernel: Kernel::run, declared ADVAUG_ALWAYS_INLINE, is
/// inlined into each and compiled there for its instruction set.
template <class Kernel, class... Args>
ADVAUG_TARGET_AVX2 void run_avx2(Args... args) {
    Kernel::run(args...);
}
template <class Kernel, class... Args>
void run_baseline(Args... args) {
    Kernel::run(args...);
}

/// Kernel::run(args...), in its AVX2 version where the CPU has AVX2.
template <class Kernel, class... Args>
void run_kernel(Args... args) {
    if (avx2_kernels()) {
        run_avx2<Kernel>(args...);
    } else {
        run_baseline<Kernel>(args...);
    }
}

}  // namespace advaug::backend::detail
