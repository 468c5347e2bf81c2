// 2-D convolution over NCHW batches, computed as im2col + GEMM.
//
// Layout and semantics follow PyTorch's nn.Conv2d (cross-correlation, zero padding, no
// dilation, no groups): weight is [out_channels, in_channels, kh, kw], bias is [out_channels],
// so weights move between advaug and PyTorch unchanged.
//
//   conv2d<float> c1(1, 32, 3, gen, conv2d_options{}.padding(1));           // 28x28 -> 28x28
//   conv2d<float> c2(32, 64, 3, gen, conv2d_options{}.stride(2).padding(1)); // 28x28 -> 14x14
//
// Forward unfolds each image into columns cols [C*kh*kw, OH*OW] and multiplies:
// y[n] = W [out, C*kh*kw] cols. The input gradient multiplies back, dcols = W^T dy[n], and
// folds dcols into dx (col2im). The weight gradient unfolds each image again rather than
// keeping the whole batch unfolded: one image's columns stay in cache (225 KB for the bundled
// CNN's second convolution), where the batch's would take 29 MB of memory per cache and be
// read back from DRAM.
//
// Stride-1 convolutions (the bundled CNN's) take the wide layout in forward
// (detail::wide_layout): the image is zero-padded once, each row of the columns is then one
// contiguous run of the padded image, and the output rows come out W + 2 pw wide, cropped to OW
// with the bias added on the way. The gradients keep im2col's layout: col2im's short rows are
// inline loops, not copies, and a wide output gradient would cost one more pass over dy
// (measured: no faster for the second convolution, twice as slow for the first).
//
// The images are split across advaug's threads (parallel/threads.hpp), each with its own
// columns and single-threaded BLAS. The weight gradient is summed per block of
// grad_block_images images and the blocks are added in order, so it is the same for any number
// of threads.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <string>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/backend/gemm.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/dense.hpp"  // weight_init
#include "advaug/layers/layer.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/parallel/threads.hpp"

namespace advaug {

/// Stride, zero padding and weight initialization of a conv2d. Each setter validates its value
/// at once. Defaults: stride 1, padding 0, weight_init::he_normal.
class conv2d_options {
public:
    /// The same stride along height and width. requires: >= 1.
    conv2d_options& stride(std::ptrdiff_t s) {
        if (s < 1) detail::invalid("conv2d_options::stride", "stride must be >= 1, got ", s);
        stride_ = {static_cast<std::size_t>(s), static_cast<std::size_t>(s)};
        return *this;
    }
    /// Stride (height, width). requires: both >= 1.
    conv2d_options& stride(std::ptrdiff_t h, std::ptrdiff_t w) {
        if (h < 1 || w < 1) {
            detail::invalid("conv2d_options::stride", "stride must be >= 1, got (", h, ", ", w,
                            ")");
        }
        stride_ = {static_cast<std::size_t>(h), static_cast<std::size_t>(w)};
        return *this;
    }
    /// Zeros added on every side. requires: >= 0.
    conv2d_options& padding(std::ptrdiff_t p) {
        if (p < 0) detail::invalid("conv2d_options::padding", "padding must be >= 0, got ", p);
        padding_ = {static_cast<std::size_t>(p), static_cast<std::size_t>(p)};
        return *this;
    }
    /// Zeros added above and below (h), left and right (w). requires: both >= 0.
    conv2d_options& padding(std::ptrdiff_t h, std::ptrdiff_t w) {
        if (h < 0 || w < 0) {
            detail::invalid("conv2d_options::padding", "padding must be >= 0, got (", h, ", ", w,
                            ")");
        }
        padding_ = {static_cast<std::size_t>(h), static_cast<std::size_t>(w)};
        return *this;
    }
    /// he_normal: weights N(0, 2 / fan_in), biases 0; pytorch_default: weights and biases
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch.nn.Conv2d. fan_in = in_channels * kh * kw.
    conv2d_options& init(weight_init i) {
        if (i != weight_init::he_normal && i != weight_init::pytorch_default) {
            detail::invalid("conv2d_options::init", "unknown weight_init value ",
                            static_cast<int>(i));
        }
        init_ = i;
        return *this;
    }

    std::array<std::size_t, 2> stride() const { return stride_; }
    std::array<std::size_t, 2> padding() const { return padding_; }
    weight_init init() const { return init_; }

private:
    std::array<std::size_t, 2> stride_{1, 1};
    std::array<std::size_t, 2> padding_{0, 0};
    weight_init init_ = weight_init::he_normal;
};

namespace detail {

/// Sizes of one convolution (or pooling) of a C x H x W image.
struct conv_geometry {
    std::size_t c, h, w;  // input image
    std::size_t kh, kw;   // kernel
    std::size_t sh, sw;   // stride
    std::size_t ph, pw;   // zero padding
    std::size_t oh, ow;   // output

    std::size_t patch() const { return c * kh * kw; }  // rows of cols
    std::size_t pixels() const { return oh * ow; }     // columns of cols

    // The wide layout of stride-1 convolutions (see wide_layout below).
    std::size_t padded_w() const { return w + 2 * pw; }  // a padded row, and a wide output row
    std::size_t wide_pixels() const { return oh * padded_w(); }  // columns of wide cols
    /// One padded channel [(H + 2 ph) x (W + 2 pw)] and kw - 1 zeros after it: the last tap's
    /// wide row reads that far.
    std::size_t padded_plane() const { return (h + 2 * ph) * padded_w() + kw - 1; }
};

/// Whether a convolution runs in the wide layout. Stride 1 only: an output row is then the
/// padded input rows read at one offset per tap, so each row of the columns is one contiguous
/// run of the padded image, OH * (W + 2 pw) long. Output row oy is that run's
/// [oy * (W + 2 pw), oy * (W + 2 pw) + OW); the kw - 1 columns after it read across the row's
/// end and are dropped. im2col's rows are OW long (14 floats for the bundled CNN's second
/// convolution, 4,032 copies per image, as much time as the GEMM); the wide rows are 224
/// floats, 288 copies, for a GEMM 16/14 as wide. Taken when the dropped columns are at most a
/// quarter of the output's (kw - 1 <= OW / 4), where the GEMM's extra work stays below what
/// the short copies cost.
inline bool wide_layout(const conv_geometry& g) {
    return g.sh == 1 && g.sw == 1 && (g.kw - 1) * 4 <= g.ow;
}

/// Output columns ox whose input column ox * stride + offset lies in [0, width): [lo, hi).
inline void valid_range(std::ptrdiff_t offset, std::size_t stride, std::size_t width,
                        std::size_t out, std::size_t& lo, std::size_t& hi) {
    const auto s = static_cast<std::ptrdiff_t>(stride);
    const std::ptrdiff_t first = offset >= 0 ? 0 : (-offset + s - 1) / s;
    const std::ptrdiff_t end = static_cast<std::ptrdiff_t>(width) - offset;  // ox * s < end
    const std::ptrdiff_t last = end <= 0 ? 0 : (end + s - 1) / s;
    hi = std::min(out, static_cast<std::size_t>(last));
    lo = std::min(hi, static_cast<std::size_t>(first));
}

/// Unfolds one image x [C, H, W] into cols [C*kh*kw, OH*OW]; row (c, ky, kx) holds the input
/// value under kernel tap (ky, kx) of channel c for every output pixel, 0 in the padding.
template <class T>
void im2col(const T* x, const conv_geometry& g, T* cols) {
    for (std::size_t c = 0; c < g.c; ++c) {
        for (std::size_t ky = 0; ky < g.kh; ++ky) {
            for (std::size_t kx = 0; kx < g.kw; ++kx) {
                T* row = cols + ((c * g.kh + ky) * g.kw + kx) * g.pixels();
                const auto off_x =
                    static_cast<std::ptrdiff_t>(kx) - static_cast<std::ptrdiff_t>(g.pw);
                std::size_t lo, hi;
                valid_range(off_x, g.sw, g.w, g.ow, lo, hi);
                for (std::size_t oy = 0; oy < g.oh; ++oy) {
                    T* r = row + oy * g.ow;
                    const auto iy = static_cast<std::ptrdiff_t>(oy * g.sh + ky) -
                                    static_cast<std::ptrdiff_t>(g.ph);
                    if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h)) {
                        std::fill(r, r + g.ow, T(0));
                        continue;
                    }
                    const T* xr = x + (c * g.h + static_cast<std::size_t>(iy)) * g.w;
                    std::fill(r, r + lo, T(0));
                    if (g.sw == 1) {
                        std::copy(xr + (static_cast<std::ptrdiff_t>(lo) + off_x),
                                  xr + (static_cast<std::ptrdiff_t>(hi) + off_x), r + lo);
                    } else {
                        for (std::size_t ox = lo; ox < hi; ++ox) {
                            r[ox] = xr[static_cast<std::ptrdiff_t>(ox * g.sw) + off_x];
                        }
                    }
                    std::fill(r + hi, r + g.ow, T(0));
                }
            }
        }
    }
}

/// The adjoint of im2col: adds every entry of cols to the input pixel it was read from
/// (padding entries are dropped). dx [C, H, W] must be zeroed (or hold what to add to).
template <class T>
void col2im_add(const T* cols, const conv_geometry& g, T* dx) {
    for (std::size_t c = 0; c < g.c; ++c) {
        for (std::size_t ky = 0; ky < g.kh; ++ky) {
            for (std::size_t kx = 0; kx < g.kw; ++kx) {
                const T* row = cols + ((c * g.kh + ky) * g.kw + kx) * g.pixels();
                const auto off_x =
                    static_cast<std::ptrdiff_t>(kx) - static_cast<std::ptrdiff_t>(g.pw);
                std::size_t lo, hi;
                valid_range(off_x, g.sw, g.w, g.ow, lo, hi);
                for (std::size_t oy = 0; oy < g.oh; ++oy) {
                    const auto iy = static_cast<std::ptrdiff_t>(oy * g.sh + ky) -
                                    static_cast<std::ptrdiff_t>(g.ph);
                    if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h)) continue;
                    const T* r = row + oy * g.ow;
                    T* dr = dx + (c * g.h + static_cast<std::size_t>(iy)) * g.w;
                    if (g.sw == 1) {  // contiguous: the loop vectorizes
                        for (std::size_t ox = lo; ox < hi; ++ox) {
                            dr[static_cast<std::ptrdiff_t>(ox) + off_x] += r[ox];
                        }
                    } else {
                        for (std::size_t ox = lo; ox < hi; ++ox) {
                            dr[static_cast<std::ptrdiff_t>(ox * g.sw) + off_x] += r[ox];
                        }
                    }
                }
            }
        }
    }
}

/// Copies image x [C, H, W] into planes [C, padded_plane()], zero-padded.
template <class T>
void pad_planes(const T* x, const conv_geometry& g, T* planes) {
    const std::size_t wp = g.padded_w(), size = g.padded_plane();
    std::fill(planes, planes + g.c * size, T(0));
    for (std::size_t c = 0; c < g.c; ++c) {
        for (std::size_t iy = 0; iy < g.h; ++iy) {
            std::copy_n(x + (c * g.h + iy) * g.w, g.w, planes + c * size + (iy + g.ph) * wp + g.pw);
        }
    }
}

/// The wide columns [C*kh*kw, wide_pixels()] of padded planes: row (c, ky, kx) is the run of
/// plane c that starts at (ky, kx).
template <class T>
void im2col_wide(const T* planes, const conv_geometry& g, T* cols) {
    const std::size_t wp = g.padded_w(), size = g.padded_plane(), n = g.wide_pixels();
    for (std::size_t c = 0; c < g.c; ++c) {
        for (std::size_t ky = 0; ky < g.kh; ++ky) {
            for (std::size_t kx = 0; kx < g.kw; ++kx) {
                std::copy_n(planes + c * size + ky * wp + kx, n,
                            cols + ((c * g.kh + ky) * g.kw + kx) * n);
            }
        }
    }
}

/// y [planes, OH, OW] from wide rows [planes, wide_pixels()], plus bias[plane]. The dropped
/// columns are skipped.
template <class T>
void crop_wide(const T* wide, const conv_geometry& g, std::size_t planes, const T* bias, T* y) {
    const std::size_t wp = g.padded_w(), n = g.wide_pixels();
    for (std::size_t o = 0; o < planes; ++o) {
        const T b = bias[o];
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
            const T* s = wide + o * n + oy * wp;
            T* d = y + (o * g.oh + oy) * g.ow;
            for (std::size_t ox = 0; ox < g.ow; ++ox) d[ox] = s[ox] + b;
        }
    }
}

/// The sum of n values in 8 interleaved partial sums: a vector reduction (a single running sum
/// is a serial dependency the compiler may not reorder).
template <class T>
T sum_of(const T* v, std::size_t n) {
    constexpr std::size_t lanes = 8;
    T part[lanes] = {};
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        for (std::size_t l = 0; l < lanes; ++l) part[l] += v[i + l];
    }
    T sum = 0;
    for (; i < n; ++i) sum += v[i];
    for (std::size_t l = 0; l < lanes; ++l) sum += part[l];
    return sum;
}

/// "3" for a square pair, "(3, 1)" otherwise.
inline std::string pair_string(std::array<std::size_t, 2> p) {
    return p[0] == p[1] ? concat(p[0]) : concat("(", p[0], ", ", p[1], ")");
}

}  // namespace detail

template <class T>
class conv2d {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 4;
    static constexpr bool mode_independent = true;
    static constexpr optional_member optional_members =
        optional_member::output_shape | optional_member::describe |
        optional_member::append_parameters;

    /// Images per partial sum of the weight gradient (see the header comment).
    static constexpr std::size_t grad_block_images = 8;

    /// What backward needs, and the buffers that forward and backward reuse from call to call.
    struct cache_type {
        const tensor<T, 4>* x = nullptr;           // the input (not copied; must outlive backward)
        std::array<std::size_t, 4> input_shape{};  // [N, C, H, W]; C == 0 before forward()
        std::size_t patch = 0, pixels = 0;         // C*kh*kw and OH*OW of that forward()
        mutable std::vector<T> cols;     // per thread, one image unfolded [C*kh*kw, OH*OW]
        mutable std::vector<T> dcols;    // backward_input's scratch, the same
        mutable std::vector<T> partial;  // per block of images, [out*C*kh*kw + out] gradient sums
    };

    /// Square kernel. requires: in_channels, out_channels, kernel >= 1.
    conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, rng& gen,
           const conv2d_options& options = {})
        : conv2d(in_channels, out_channels, {kernel, kernel}, gen, options) {}

    /// Kernel (height, width). requires: in_channels, out_channels, both kernel sizes >= 1.
    conv2d(std::size_t in_channels, std::size_t out_channels, std::array<std::size_t, 2> kernel,
           rng& gen, const conv2d_options& options = {})
        : stride_(options.stride()), padding_(options.padding()) {
        if (in_channels == 0 || out_channels == 0 || kernel[0] == 0 || kernel[1] == 0) {
            detail::invalid("conv2d", "in_channels, out_channels and kernel must be >= 1, got ",
                            in_channels, ", ", out_channels, ", ", kernel[0], "x", kernel[1]);
        }
        const std::array<std::size_t, 4> wshape{out_channels, in_channels, kernel[0], kernel[1]};
        weight_ = tensor<T, 4>::from_shape(wshape);
        weight_grad_ = tensor<T, 4>::from_shape(wshape);
        bias_ = tensor<T, 1>::from_shape({out_channels});
        bias_grad_ = tensor<T, 1>::from_shape({out_channels});
        const double fan_in = static_cast<double>(in_channels * kernel[0] * kernel[1]);
        if (options.init() == weight_init::he_normal) {
            const double sd = std::sqrt(2.0 / fan_in);
            for (auto& w : weight_) w = static_cast<T>(sd * gen.normal());
            bias_.fill(T(0));
        } else {
            const double bound = 1.0 / std::sqrt(fan_in);
            for (auto& w : weight_) w = static_cast<T>(gen.uniform(-bound, bound));
            for (auto& b : bias_) b = static_cast<T>(gen.uniform(-bound, bound));
        }
        zero_grad();
    }

    std::size_t in_channels() const { return weight_.shape()[1]; }
    std::size_t out_channels() const { return weight_.shape()[0]; }
    std::array<std::size_t, 2> kernel_size() const {
        return {weight_.shape()[2], weight_.shape()[3]};
    }
    std::array<std::size_t, 2> stride() const { return stride_; }
    std::array<std::size_t, 2> padding() const { return padding_; }

    /// [out_channels, OH, OW] for one image [C, H, W], OH = (H + 2 ph - kh) / sh + 1 (floor).
    /// Throws std::invalid_argument when C != in_channels() or the kernel is larger than the
    /// padded image.
    std::array<std::size_t, 3> output_shape(std::array<std::size_t, 3> in_chw) const {
        const auto g = geometry("conv2d::output_shape", "input shape ", in_chw, "");
        return {out_channels(), g.oh, g.ow};
    }
    /// The same for a sample shape in any sized range, such as a std::vector.
    template <class Shape>
    std::array<std::size_t, 3> output_shape(const Shape& in_chw) const {
        if (std::size(in_chw) != 3) {
            detail::invalid("conv2d::output_shape", "input shape ", detail::shape_string(in_chw),
                            ", ", describe(), " expects [", in_channels(), ", H, W]");
        }
        const auto it = std::begin(in_chw);
        return output_shape(std::array<std::size_t, 3>{it[0], it[1], it[2]});
    }

    /// "conv2d(1->32, 3x3, stride 1, padding 1)".
    std::string describe() const {
        const auto k = kernel_size();
        return detail::concat("conv2d(", in_channels(), "->", out_channels(), ", ", k[0], "x", k[1],
                              ", stride ", detail::pair_string(stride_), ", padding ",
                              detail::pair_string(padding_), ")");
    }

    /// requires: x is [N, in_channels(), H, W] and the kernel fits the padded image.
    /// ensures: y is [N, out_channels(), OH, OW]; y and the cache's buffers are resized only
    /// when their shapes change.
    void forward(const tensor<T, 4>& x, cache_type& cache, tensor<T, 4>& y) const {
        const auto& s = x.shape();
        const auto g = geometry("conv2d::forward", "inputs have shape ", s, "N, ");
        const std::size_t n = s[0], out = out_channels(), k = g.patch(), p = g.pixels();
        const std::array<std::size_t, 4> y_shape{n, out, g.oh, g.ow};
        if (y.shape() != y_shape) y.resize(y_shape);
        const std::size_t image = g.c * g.h * g.w;
        if (detail::wide_layout(g)) {
            // Per thread: the padded image, its wide columns and the wide output.
            const std::size_t planes = g.c * g.padded_plane(), wp = g.wide_pixels();
            const std::size_t slot_size = planes + k * wp + out * wp;
            T* const scratch = per_slot(cache.cols, slot_size);
            detail::parallel_for(n, 1, [&](std::size_t begin, std::size_t end, std::size_t slot) {
                T* const pad = scratch + slot * slot_size;
                T* const c = pad + planes;
                T* const yw = c + k * wp;
                for (std::size_t i = begin; i < end; ++i) {
                    detail::pad_planes(x.data() + i * image, g, pad);
                    detail::im2col_wide(pad, g, c);
                    backend::gemm<T>(false, false, out, wp, k, T(1), weight_.data(), k, c, wp,
                                    T(0), yw, wp);
                    detail::crop_wide(yw, g, out, bias_.data(), y.data() + i * out * p);
                }
            });
        } else {
            T* const cols = per_slot(cache.cols, k * p);
            detail::parallel_for(n, 1, [&](std::size_t begin, std::size_t end, std::size_t slot) {
                T* c = cols + slot * k * p;
                for (std::size_t i = begin; i < end; ++i) {
                    T* yi = y.data() + i * out * p;
                    detail::im2col(x.data() + i * image, g, c);
                    for (std::size_t o = 0; o < out; ++o) std::fill_n(yi + o * p, p, bias_(o));
                    backend::gemm<T>(false, false, out, p, k, T(1), weight_.data(), k, c, p, T(1),
                                    yi, p);
                }
            });
        }
        cache.x = &x;
        cache.input_shape = {s[0], s[1], s[2], s[3]};
        cache.patch = k;
        cache.pixels = p;
    }

    /// dx = the input gradient for the output gradient dy (overwritten, not accumulated).
    void backward_input(const cache_type& cache, const tensor<T, 4>& dy, tensor<T, 4>& dx) const {
        const auto g = cached_geometry("conv2d::backward_input", cache, dy);
        const std::size_t n = cache.input_shape[0], out = out_channels(), k = g.patch(),
                          p = g.pixels(), image = g.c * g.h * g.w;
        if (dx.shape() != cache.input_shape) dx.resize(cache.input_shape);
        T* const dcols = per_slot(cache.dcols, k * p);
        detail::parallel_for(n, 1, [&](std::size_t begin, std::size_t end, std::size_t slot) {
            T* d = dcols + slot * k * p;
            std::fill(dx.data() + begin * image, dx.data() + end * image, T(0));
            for (std::size_t i = begin; i < end; ++i) {
                backend::gemm<T>(true, false, k, p, out, T(1), weight_.data(), k,
                                dy.data() + i * out * p, p, T(0), d, p);
                detail::col2im_add(d, g, dx.data() + i * image);
            }
        });
    }

    /// dW += scale * sum_n dy[n] cols[n]^T, db += scale * sums of dy over the batch and the
    /// pixels.
    void accumulate_gradient(const cache_type& cache, const tensor<T, 4>& dy, T scale = T(1)) {
        const auto g = cached_geometry("conv2d::accumulate_gradient", cache, dy);
        const std::size_t n = cache.input_shape[0], out = out_channels(), k = g.patch(),
                          p = g.pixels(), image = g.c * g.h * g.w;
        // Block b's sums of scale * dy cols^T and scale * dy, then the blocks added in order.
        const std::size_t blocks = (n + grad_block_images - 1) / grad_block_images;
        const std::size_t stride = out * k + out;
        T* const cols = per_slot(cache.cols, k * p);
        if (cache.partial.size() < blocks * stride) cache.partial.resize(blocks * stride);
        T* const partial = cache.partial.data();
        detail::parallel_for(blocks, 1, [&](std::size_t first, std::size_t last, std::size_t slot) {
            T* c = cols + slot * k * p;
            for (std::size_t b = first; b < last; ++b) {
                T* dw = partial + b * stride;
                T* db = dw + out * k;
                const std::size_t end = std::min(n, (b + 1) * grad_block_images);
                for (std::size_t i = b * grad_block_images; i < end; ++i) {
                    const T* dyi = dy.data() + i * out * p;
                    const bool first_image = i == b * grad_block_images;
                    detail::im2col(cache.x->data() + i * image, g, c);
                    backend::gemm<T>(false, true, out, k, p, scale, dyi, p, c, p,
                                    first_image ? T(0) : T(1), dw, k);
                    for (std::size_t o = 0; o < out; ++o) {
                        const T sum = detail::sum_of(dyi + o * p, p);
                        const T v = scale == T(1) ? sum : scale * sum;
                        db[o] = first_image ? v : db[o] + v;
                    }
                }
            }
        });
        T* const wg = weight_grad_.data();
        T* const bg = bias_grad_.data();
        detail::parallel_for(stride, 4096, [&](std::size_t begin, std::size_t end, std::size_t) {
            const std::size_t w_end = std::min(end, out * k), b_begin = std::max(begin, out * k);
            for (std::size_t b = 0; b < blocks; ++b) {
                const T* src = partial + b * stride;
                for (std::size_t j = begin; j < w_end; ++j) wg[j] += src[j];
                for (std::size_t j = b_begin; j < end; ++j) bg[j - out * k] += src[j];
            }
        });
    }

    void zero_grad() {
        weight_grad_.fill(T(0));
        bias_grad_.fill(T(0));
    }

    /// "<prefix>weight" [out, in, kh, kw] and "<prefix>bias" [out].
    void append_parameters(std::vector<parameter_view<T>>& out, const std::string& prefix) {
        const auto& ws = weight_.shape();
        out.push_back({prefix + "weight",
                       {ws[0], ws[1], ws[2], ws[3]},
                       {weight_.data(), weight_.size()},
                       {weight_grad_.data(), weight_grad_.size()}});
        out.push_back({prefix + "bias",
                       {out_channels()},
                       {bias_.data(), bias_.size()},
                       {bias_grad_.data(), bias_grad_.size()}});
    }

    std::vector<parameter_view<T>> parameters() {
        std::vector<parameter_view<T>> out;
        append_parameters(out, "");
        return out;
    }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

    /// Assign in place (xt::noalias or element loops) to keep parameter views valid.
    tensor<T, 4>& weight() { return weight_; }
    const tensor<T, 4>& weight() const { return weight_; }
    tensor<T, 1>& bias() { return bias_; }
    const tensor<T, 1>& bias() const { return bias_; }

private:
    /// Geometry for an input of shape `shape` ([C, H, W] or [N, C, H, W]); in errors, `what`
    /// introduces the shape and `batch` ("N, " or "") prefixes the expected one.
    template <class Shape>
    detail::conv_geometry geometry(const char* fn, const char* what, const Shape& shape,
                                   const char* batch) const {
        const std::size_t r = shape.size();
        const std::size_t c = shape[r - 3], h = shape[r - 2], w = shape[r - 1];
        const auto k = kernel_size();
        if (c != in_channels()) {
            detail::invalid(fn, what, detail::shape_string(shape), ", ", describe(), " expects [",
                            batch, in_channels(), ", H, W]");
        }
        const std::size_t hp = h + 2 * padding_[0], wp = w + 2 * padding_[1];
        if (hp < k[0] || wp < k[1]) {
            detail::invalid(fn, what, detail::shape_string(shape), ": the padded image ", hp, "x",
                            wp, " is smaller than the ", k[0], "x", k[1], " kernel of ",
                            describe());
        }
        return {c,
                h,
                w,
                k[0],
                k[1],
                stride_[0],
                stride_[1],
                padding_[0],
                padding_[1],
                (hp - k[0]) / stride_[0] + 1,
                (wp - k[1]) / stride_[1] + 1};
    }

    /// Geometry of the forward() that filled `cache`, after checking dy against its output.
    detail::conv_geometry cached_geometry(const char* fn, const cache_type& cache,
                                          const tensor<T, 4>& dy) const {
        const auto& s = cache.input_shape;
        if (cache.x == nullptr || s[1] != in_channels()) {
            detail::invalid(fn, "the cache was not filled by forward() of this layer");
        }
        const auto g = geometry(fn, "the cached input has shape ", s, "N, ");
        if (cache.patch != g.patch() || cache.pixels != g.pixels()) {
            detail::invalid(fn, "the cache was not filled by forward() of this layer");
        }
        const std::array<std::size_t, 4> expected{s[0], out_channels(), g.oh, g.ow};
        if (dy.shape() != expected) {
            detail::invalid(fn, "the output gradient has shape ", detail::shape_string(dy.shape()),
                            ", the layer's output is ", detail::shape_string(expected));
        }
        return g;
    }

    /// Room for one buffer of `size` per thread in `buf` (grown only, so a later call with the
    /// same sizes allocates nothing).
    static T* per_slot(std::vector<T>& buf, std::size_t size) {
        const std::size_t need = size * detail::parallel_slots();
        if (buf.size() < need) buf.resize(need);
        return buf.data();
    }

    tensor<T, 4> weight_;
    tensor<T, 1> bias_;
    tensor<T, 4> weight_grad_;
    tensor<T, 1> bias_grad_;
    std::array<std::size_t, 2> stride_;
    std::array<std::size_t, 2> padding_;
    advaug::mode mode_ = advaug::mode::train;
};

}  // namespace advaug
