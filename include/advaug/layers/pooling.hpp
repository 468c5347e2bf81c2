// 2-D max and average pooling over NCHW batches, as torch.nn.MaxPool2d / AvgPool2d without
// padding: square window k, stride s (default k), output floor((H - k) / s) + 1.
//
//   max_pool2d<float> pool(2);   // 28x28 -> 14x14
//
// No parameters. Max pooling routes each output gradient to the input that was the maximum of
// its window (the first one in row-major order when several are equal); NaN inputs are not
// propagated. Finite-difference checks need inputs without ties or near-ties.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "advaug/backend/element_math.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/layer.hpp"
#include "advaug/layers/parameterless.hpp"
#include "advaug/parallel/threads.hpp"

namespace advaug {

namespace detail {

/// Window and stride of a pooling layer, checked once, and the shape arithmetic both share.
class pool_window {
public:
    pool_window(const char* layer, std::size_t kernel, std::size_t stride)
        : layer_(layer), kernel_(kernel), stride_(stride) {
        if (kernel == 0 || stride == 0) {
            invalid(layer, "kernel and stride must be >= 1, got kernel ", kernel, ", stride ",
                    stride);
        }
    }

    std::size_t kernel() const { return kernel_; }
    std::size_t stride() const { return stride_; }

    /// "max_pool2d(2x2, stride 2)".
    std::string describe() const {
        return concat(layer_, "(", kernel_, "x", kernel_, ", stride ", stride_, ")");
    }

    /// Output height and width for an input of shape `shape` ([C, H, W] or [N, C, H, W]);
    /// `what` ("inputs have shape ") introduces the shape in errors.
    template <class Shape>
    std::array<std::size_t, 2> output_hw(const char* fn, const char* what,
                                         const Shape& shape) const {
        const std::size_t h = shape[shape.size() - 2], w = shape[shape.size() - 1];
        if (h < kernel_ || w < kernel_) {
            invalid(fn, what, shape_string(shape), ": the ", h, "x", w,
                    " image is smaller than the ", kernel_, "x", kernel_, " window of ",
                    describe());
        }
        return {(h - kernel_) / stride_ + 1, (w - kernel_) / stride_ + 1};
    }

    /// Output [C, OH, OW] for one sample of shape [C, H, W], given as any sized range (an array,
    /// or the std::vector that sequential passes); `fn` names the caller in errors.
    template <class Shape>
    std::array<std::size_t, 3> output_chw(const char* fn, const Shape& in) const {
        if (std::size(in) != 3) {
            invalid(fn, "input shape ", shape_string(in), ", ", describe(), " expects [C, H, W]");
        }
        const auto it = std::begin(in);
        const std::array<std::size_t, 3> chw{it[0], it[1], it[2]};
        const auto hw = output_hw(fn, "input shape ", chw);
        return {chw[0], hw[0], hw[1]};
    }

    /// Output shape of a batch x; checks x's spatial size.
    std::array<std::size_t, 4> output_shape(const char* fn,
                                            const std::array<std::size_t, 4>& s) const {
        const auto hw = output_hw(fn, "inputs have shape ", s);
        return {s[0], s[1], hw[0], hw[1]};
    }

    /// Output shape of the forward() that recorded `input`, after checking dy against it.
    std::array<std::size_t, 4> check_output_gradient(const char* fn,
                                                     const std::array<std::size_t, 4>& input,
                                                     const std::array<std::size_t, 4>& dy) const {
        if (input[2] == 0) {  // forward() records H >= kernel >= 1
            invalid(fn, "the cache was not filled by forward() of this layer");
        }
        const auto expected = output_shape(fn, input);
        if (dy != expected) {
            invalid(fn, "the output gradient has shape ", shape_string(dy),
                    ", the layer's output is ", shape_string(expected));
        }
        return expected;
    }

private:
    const char* layer_;
    std::size_t kernel_, stride_;
};

}  // namespace detail

template <class T>
class max_pool2d : public parameterless_layer<T> {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 4;
    static constexpr bool mode_independent = true;
    static constexpr optional_member optional_members =
        optional_member::output_shape | optional_member::describe;

    struct cache_type {
        std::array<std::size_t, 4> input_shape{};  // [N, C, H, W] of forward's input
        std::vector<std::size_t> argmax;           // per output: flat input index of its maximum
    };

    /// Window kernel x kernel, stride kernel. requires: kernel >= 1.
    explicit max_pool2d(std::size_t kernel) : window_("max_pool2d", kernel, kernel) {}
    /// requires: kernel, stride >= 1.
    max_pool2d(std::size_t kernel, std::size_t stride) : window_("max_pool2d", kernel, stride) {}

    std::size_t kernel_size() const { return window_.kernel(); }
    std::size_t stride() const { return window_.stride(); }

    /// [C, OH, OW] for one image [C, H, W] (an array or a std::vector); throws
    /// std::invalid_argument for another rank or when H or W < kernel.
    template <class Shape>
    std::array<std::size_t, 3> output_shape(const Shape& in_chw) const {
        return window_.output_chw("max_pool2d::output_shape", in_chw);
    }
    std::array<std::size_t, 3> output_shape(std::array<std::size_t, 3> in_chw) const {
        return window_.output_chw("max_pool2d::output_shape", in_chw);
    }
    std::string describe() const { return window_.describe(); }

    void forward(const tensor<T, 4>& x, cache_type& cache, tensor<T, 4>& y) const {
        forward_recorded("max_pool2d::forward", x, cache, y, false);
    }

    /// The pool of the ReLU of x for a pass a backward pass follows: forward() of x, then
    /// max(0, y) of each output, which for finite inputs is bit for bit forward() of relu(x)
    /// (ReLU and max commute) at a quarter of the ReLUs, and without relu(x) in memory. The
    /// argmax recorded is x's; backward_input_relu() is the backward pass of the pair.
    void forward_relu(const tensor<T, 4>& x, cache_type& cache, tensor<T, 4>& y) const {
        forward_recorded("max_pool2d::forward_relu", x, cache, y, true);
    }

    /// dx = d/dx of forward_relu()'s output y given dy: dx[argmax] += dy where y > 0 for every
    /// output, all other entries 0. For finite inputs this is bit for bit max_pool2d's
    /// backward_input() followed by the ReLU's: an output of 0 has no gradient either way, and a
    /// positive maximum is the same entry of x and of relu(x).
    void backward_input_relu(const cache_type& cache, const tensor<T, 4>& y, const tensor<T, 4>& dy,
                             tensor<T, 4>& dx) const {
        window_.check_output_gradient("max_pool2d::backward_input_relu", cache.input_shape, dy.shape());
        if (y.shape() != dy.shape()) {
            detail::invalid("max_pool2d::backward_input_relu", "the outputs have shape ", detail::shape_string(y.shape()),
                            ", the output gradient ", detail::shape_string(dy.shape()));
        }
        scatter(cache, dy, y.data(), dx);
    }

    /// forward()'s outputs without its record (the argmax a backward pass needs), for a pass no
    /// backward pass follows; with `relu`, max(0, y) of each output, which for finite inputs is
    /// bit for bit the pool of the ReLU of x (ReLU and max commute), at a quarter of the ReLUs.
    void forward_values(const tensor<T, 4>& x, tensor<T, 4>& y, bool relu) const {
        const std::array<std::size_t, 4> in = x.shape();
        const auto out = window_.output_shape("max_pool2d::forward_values", in);
        if (y.shape() != out) y.resize(out);
        const std::size_t k = window_.kernel(), s = window_.stride(), h = in[2], w = in[3],
                          oh = out[2], ow = out[3];
        detail::parallel_for(in[0] * in[1], detail::rows_per_chunk(h * w),
                             [&](std::size_t first, std::size_t last, std::size_t) {
                                 values_planes(x.data(), y.data(), first, last, h, w, oh, ow, k, s, relu);
                             });
    }

    /// dx[argmax] += dy for every output; all other entries 0.
    void backward_input(const cache_type& cache, const tensor<T, 4>& dy, tensor<T, 4>& dx) const {
        window_.check_output_gradient("max_pool2d::backward_input", cache.input_shape, dy.shape());
        scatter(cache, dy, nullptr, dx);
    }

private:
    /// forward() and forward_relu(); `fn` names the caller in errors.
    void forward_recorded(const char* fn, const tensor<T, 4>& x, cache_type& cache, tensor<T, 4>& y,
                          bool relu) const {
        const std::array<std::size_t, 4> in = x.shape();
        const auto out = window_.output_shape(fn, in);
        if (y.shape() != out) y.resize(out);
        cache.argmax.resize(y.size());
        const std::size_t k = window_.kernel(), s = window_.stride(), h = in[2], w = in[3],
                          oh = out[2], ow = out[3];
        // The planes (image, channel) are split across advaug's threads.
        detail::parallel_for(in[0] * in[1], detail::rows_per_chunk(h * w),
                             [&](std::size_t first, std::size_t last, std::size_t) {
                                 forward_planes(x.data(), y.data(), cache.argmax.data(), first,
                                                last, h, w, oh, ow, k, s);
                                 if (relu) relu_outputs(y.data() + first * oh * ow, (last - first) * oh * ow);
                             });
        cache.input_shape = in;
    }

    static void relu_outputs(T* __restrict y, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) y[i] = y[i] > T(0) ? y[i] : T(0);
    }

    /// dx[argmax] += dy for every output (where y > 0 when `y` is given); all other entries 0.
    void scatter(const cache_type& cache, const tensor<T, 4>& dy, const T* y, tensor<T, 4>& dx) const {
        if (dx.shape() != cache.input_shape) dx.resize(cache.input_shape);
        const auto& in = cache.input_shape;
        const std::size_t plane_in = in[2] * in[3], plane_out = dy.shape()[2] * dy.shape()[3];
        const T* g = dy.data();
        T* d = dx.data();
        const std::size_t* arg = cache.argmax.data();
        // A window never leaves its plane, so threads that own disjoint planes write disjoint
        // entries.
        detail::parallel_for(in[0] * in[1], detail::rows_per_chunk(plane_in),
                             [&](std::size_t first, std::size_t last, std::size_t) {
                                 std::fill(d + first * plane_in, d + last * plane_in, T(0));
                                 if (y) {
                                     for (std::size_t j = first * plane_out; j < last * plane_out; ++j) {
                                         d[arg[j]] += y[j] > T(0) ? g[j] : T(0);
                                     }
                                 } else {
                                     for (std::size_t j = first * plane_out; j < last * plane_out; ++j) {
                                         d[arg[j]] += g[j];
                                     }
                                 }
                             });
    }

    /// The outputs and argmax entries of planes [first, last); each window is
    /// backend::element::max_window, as on a device.
    static void forward_planes(const T* xp, T* y, std::size_t* argmax, std::size_t first,
                               std::size_t last, std::size_t h, std::size_t w, std::size_t oh,
                               std::size_t ow, std::size_t k, std::size_t s) {
        if (k == 2 && s == 2 && w < std::numeric_limits<std::uint32_t>::max()) {
            pool_2x2_planes(xp, y, argmax, first, last, h, w, oh, ow);
            return;
        }
        T* yp = y + first * oh * ow;
        std::size_t* arg = argmax + first * oh * ow;
        for (std::size_t plane = first; plane < last; ++plane) {
            const std::size_t base = plane * h * w;
            for (std::size_t oy = 0; oy < oh; ++oy) {
                for (std::size_t ox = 0; ox < ow; ++ox) {
                    *arg++ =
                        backend::element::max_window(xp, base + oy * s * w + ox * s, w, k, *yp++);
                }
            }
        }
    }

    /// The values of forward_planes (max_window's comparisons in its order), then max(0, .)
    /// with `relu`.
    static void values_planes(const T* xp, T* y, std::size_t first, std::size_t last, std::size_t h,
                              std::size_t w, std::size_t oh, std::size_t ow, std::size_t k, std::size_t s,
                              bool relu) {
        if (k == 2 && s == 2) {
            for (std::size_t plane = first; plane < last; ++plane) {
                for (std::size_t oy = 0; oy < oh; ++oy) {
                    const T* __restrict r0 = xp + plane * h * w + 2 * oy * w;
                    const T* __restrict r1 = r0 + w;
                    T* __restrict yr = y + (plane * oh + oy) * ow;
                    for (std::size_t j = 0; j < ow; ++j) {
                        T best = r0[2 * j];
                        best = r0[2 * j + 1] > best ? r0[2 * j + 1] : best;
                        best = r1[2 * j] > best ? r1[2 * j] : best;
                        best = r1[2 * j + 1] > best ? r1[2 * j + 1] : best;
                        yr[j] = best;
                    }
                }
            }
        } else {
            T* yp = y + first * oh * ow;
            for (std::size_t plane = first; plane < last; ++plane) {
                const std::size_t base = plane * h * w;
                for (std::size_t oy = 0; oy < oh; ++oy) {
                    for (std::size_t ox = 0; ox < ow; ++ox) {
                        backend::element::max_window(xp, base + oy * s * w + ox * s, w, k, *yp++);
                    }
                }
            }
        }
        if (relu) relu_outputs(y + first * oh * ow, (last - first) * oh * ow);
    }

    /// forward_planes for the common 2 x 2 window with stride 2, a row of outputs at a time,
    /// with max_window's comparisons in its order (so the same values and indices, NaNs and ties
    /// included). The loop over a row vectorizes: the window's offset is kept as a 32-bit mask
    /// select beside the float compares and widened to the flat index in a second loop; the
    /// 64-bit select in the same loop does not vectorize (measured: 1.55 times faster than
    /// max_window one window at a time, 32 x 28 x 28 planes, SSE2).
    static void pool_2x2_planes(const T* xp, T* y, std::size_t* argmax, std::size_t first,
                                std::size_t last, std::size_t h, std::size_t w, std::size_t oh,
                                std::size_t ow) {
        constexpr std::size_t block = 64;
        std::uint32_t offset[block];
        const auto w32 = static_cast<std::uint32_t>(w);
        for (std::size_t plane = first; plane < last; ++plane) {
            for (std::size_t oy = 0; oy < oh; ++oy) {
                const std::size_t top = plane * h * w + 2 * oy * w;
                for (std::size_t ox0 = 0; ox0 < ow; ox0 += block) {
                    const std::size_t n = std::min(block, ow - ox0);
                    const T* __restrict r0 = xp + top + 2 * ox0;
                    const T* __restrict r1 = r0 + w;
                    T* __restrict yr = y + (plane * oh + oy) * ow + ox0;
                    for (std::size_t j = 0; j < n; ++j) {
                        const T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j],
                                d = r1[2 * j + 1];
                        T best = a;
                        std::uint32_t off = 0;
                        std::uint32_t take = 0u - static_cast<std::uint32_t>(b > best);
                        best = b > best ? b : best;
                        off = (off & ~take) | (1u & take);
                        take = 0u - static_cast<std::uint32_t>(c > best);
                        best = c > best ? c : best;
                        off = (off & ~take) | (w32 & take);
                        take = 0u - static_cast<std::uint32_t>(d > best);
                        best = d > best ? d : best;
                        off = (off & ~take) | ((w32 + 1u) & take);
                        yr[j] = best;
                        offset[j] = off;
                    }
                    std::size_t* __restrict ar = argmax + (plane * oh + oy) * ow + ox0;
                    const std::size_t at = top + 2 * ox0;
                    for (std::size_t j = 0; j < n; ++j) ar[j] = at + 2 * j + offset[j];
                }
            }
        }
    }

    detail::pool_window window_;
};

template <class T>
class avg_pool2d : public parameterless_layer<T> {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 4;
    static constexpr bool mode_independent = true;
    static constexpr optional_member optional_members =
        optional_member::output_shape | optional_member::describe;

    struct cache_type {
        std::array<std::size_t, 4> input_shape{};  // [N, C, H, W] of forward's input
    };

    /// Window kernel x kernel, stride kernel. requires: kernel >= 1.
    explicit avg_pool2d(std::size_t kernel) : window_("avg_pool2d", kernel, kernel) {}
    /// requires: kernel, stride >= 1.
    avg_pool2d(std::size_t kernel, std::size_t stride) : window_("avg_pool2d", kernel, stride) {}

    std::size_t kernel_size() const { return window_.kernel(); }
    std::size_t stride() const { return window_.stride(); }

    /// [C, OH, OW] for one image [C, H, W] (an array or a std::vector); throws
    /// std::invalid_argument for another rank or when H or W < kernel.
    template <class Shape>
    std::array<std::size_t, 3> output_shape(const Shape& in_chw) const {
        return window_.output_chw("avg_pool2d::output_shape", in_chw);
    }
    std::array<std::size_t, 3> output_shape(std::array<std::size_t, 3> in_chw) const {
        return window_.output_chw("avg_pool2d::output_shape", in_chw);
    }
    std::string describe() const { return window_.describe(); }

    void forward(const tensor<T, 4>& x, cache_type& cache, tensor<T, 4>& y) const {
        const std::array<std::size_t, 4> in = x.shape();
        const auto out = window_.output_shape("avg_pool2d::forward", in);
        if (y.shape() != out) y.resize(out);
        const std::size_t k = window_.kernel(), s = window_.stride(), h = in[2], w = in[3],
                          oh = out[2], ow = out[3];
        const T scale = T(1) / static_cast<T>(k * k);
        const T* xp = x.data();
        T* yp = y.data();
        for (std::size_t plane = 0; plane < in[0] * in[1]; ++plane) {
            const T* xb = xp + plane * h * w;
            for (std::size_t oy = 0; oy < oh; ++oy) {
                for (std::size_t ox = 0; ox < ow; ++ox) {
                    T sum = 0;
                    for (std::size_t ky = 0; ky < k; ++ky) {
                        const T* row = xb + (oy * s + ky) * w + ox * s;
                        for (std::size_t kx = 0; kx < k; ++kx) sum += row[kx];
                    }
                    *yp++ = sum * scale;
                }
            }
        }
        cache.input_shape = in;
    }

    /// Each output gradient spread evenly over its window.
    void backward_input(const cache_type& cache, const tensor<T, 4>& dy, tensor<T, 4>& dx) const {
        const auto out = window_.check_output_gradient("avg_pool2d::backward_input",
                                                       cache.input_shape, dy.shape());
        if (dx.shape() != cache.input_shape) dx.resize(cache.input_shape);
        dx.fill(T(0));
        const auto& in = cache.input_shape;
        const std::size_t k = window_.kernel(), s = window_.stride(), h = in[2], w = in[3],
                          oh = out[2], ow = out[3];
        const T scale = T(1) / static_cast<T>(k * k);
        const T* g = dy.data();
        for (std::size_t plane = 0; plane < in[0] * in[1]; ++plane) {
            T* db = dx.data() + plane * h * w;
            for (std::size_t oy = 0; oy < oh; ++oy) {
                for (std::size_t ox = 0; ox < ow; ++ox) {
                    const T v = *g++ * scale;
                    for (std::size_t ky = 0; ky < k; ++ky) {
                        T* row = db + (oy * s + ky) * w + ox * s;
                        for (std::size_t kx = 0; kx < k; ++kx) row[kx] += v;
                    }
                }
            }
        }
    }

private:
    detail::pool_window window_;
};

}  // namespace advaug
