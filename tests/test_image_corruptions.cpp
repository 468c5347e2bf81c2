// Tests for advaug/shifts/image_corruptions.hpp: for every corruption, determinism per seed,
// outputs in [0, 1], severity 1 milder than severity 5 on real Fashion-MNIST images, and a
// property that says the output is what the name promises; the batch form; argument errors.
#include "support/check_throws.hpp"
#include "support/fashion_mnist.hpp"
#include "support/skip.hpp"
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <numbers>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "advaug/data/idx.hpp"
#include "advaug/shifts/image_corruptions.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_image_corruptions {

namespace fs = std::filesystem;
using advaug::corruption;
using advaug::tensor;
using image = tensor<double, 2>;

namespace {

using advaug::testing::check_throws;
using advaug::testing::fashion_mnist_dir;
using advaug::testing::fashion_mnist_skip_message;

image filled(std::size_t h, std::size_t w, double value) {
    image x = image::from_shape({h, w});
    x.fill(value);
    return x;
}

/// A smooth bump of the given radius at (row, col), peak 1.
image bump(std::size_t h, std::size_t w, double row, double col, double radius) {
    image x = filled(h, w, 0.0);
    for (std::size_t r = 0; r < h; ++r)
        for (std::size_t c = 0; c < w; ++c) {
            const double d2 = (r - row) * (r - row) + (c - col) * (c - col);
            x(r, c) = std::exp(-d2 / (2.0 * radius * radius));
        }
    return x;
}

/// A structured test image: a gradient background, a bright disc and a dark square.
image synthetic() {
    image x = filled(28, 28, 0.0);
    for (std::size_t r = 0; r < 28; ++r)
        for (std::size_t c = 0; c < 28; ++c) {
            const double d = std::hypot(r - 12.0, c - 15.0);
            x(r, c) = d < 7.0 ? 0.9 : 0.1 + 0.3 * c / 27.0;
            if (r >= 18 && r < 24 && c >= 3 && c < 9) x(r, c) = 0.0;
        }
    return x;
}

image corrupted(image x, corruption c, int severity, std::uint64_t seed) {
    advaug::corrupt(x, c, severity, seed);
    return x;
}

double pixel_mean(const image& x) { return xt::mean(x)(); }
double pixel_sum(const image& x) { return xt::sum(x)(); }
double pixel_std(const image& x) {
    const double m = pixel_mean(x);
    return std::sqrt(xt::mean((x - m) * (x - m))());
}
double mean_abs_diff(const image& a, const image& b) { return xt::mean(xt::abs(a - b))(); }

struct point {
    double row = 0, col = 0;
};

point centre_of_mass(const image& x) {
    point p;
    const double m = pixel_sum(x);
    for (std::size_t r = 0; r < x.shape(0); ++r)
        for (std::size_t c = 0; c < x.shape(1); ++c) {
            p.row += r * x(r, c) / m;
            p.col += c * x(r, c) / m;
        }
    return p;
}

bool in_unit_range(const image& x) {
    return std::all_of(x.begin(), x.end(), [](double v) { return v >= 0.0 && v <= 1.0; });
}

/// The first `count` Fashion-MNIST test images in [0, 1], or none if the data set is missing.
std::vector<image> real_images(std::size_t count) {
    static const tensor<std::uint8_t, 3> all = [] {
        const fs::path file = fs::path(fashion_mnist_dir) / "t10k-images-idx3-ubyte.gz";
        return fs::exists(file) ? advaug::read_idx_images(file.string())
                                : tensor<std::uint8_t, 3>::from_shape({0, 28, 28});
    }();
    std::vector<image> out;
    for (std::size_t i = 0; i < std::min<std::size_t>(count, all.shape(0)); ++i) {
        image x = image::from_shape({28, 28});
        for (std::size_t r = 0; r < 28; ++r)
            for (std::size_t c = 0; c < 28; ++c) x(r, c) = all(i, r, c) / 255.0;
        out.push_back(x);
    }
    return out;
}

/// Number of 4-connected components of pixels above `threshold`.
int components(const image& x, double threshold) {
    const auto h = static_cast<long>(x.shape(0)), w = static_cast<long>(x.shape(1));
    std::vector<int> seen(static_cast<std::size_t>(h * w), 0);
    int count = 0;
    for (long start = 0; start < h * w; ++start) {
        if (seen[start] || x(start / w, start % w) <= threshold) continue;
        ++count;
        std::vector<long> stack = {start};
        seen[start] = 1;
        while (!stack.empty()) {
            const long i = stack.back();
            stack.pop_back();
            const long r = i / w, c = i % w;
            const long next[4][2] = {{r - 1, c}, {r + 1, c}, {r, c - 1}, {r, c + 1}};
            for (const auto& n : next) {
                if (n[0] < 0 || n[0] >= h || n[1] < 0 || n[1] >= w) continue;
                const long j = n[0] * w + n[1];
                if (!seen[j] && x(n[0], n[1]) > threshold) {
                    seen[j] = 1;
                    stack.push_back(j);
                }
            }
        }
    }
    return count;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

TEST_CASE("corruptions: names round-trip and unknown names list the valid ones") {
    const auto all = advaug::all_corruptions();
    REQUIRE(all.size() == 17);
    std::set<std::string> names;
    for (corruption c : all) {
        const std::string name(advaug::to_string(c));
        names.insert(name);
        CHECK(advaug::parse_corruption(name) == c);
    }
    CHECK(names.size() == 17);
    for (const char* mnist_c : {"shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear",
                                "scale", "rotate", "brightness", "translate", "stripe", "fog",
                                "spatter", "dotted_line", "zigzag", "canny_edges"})
        CHECK(names.count(mnist_c) == 1);
    CHECK(names.count("gaussian_noise") == 1);
    CHECK(names.count("contrast") == 1);

    check_throws<std::invalid_argument>([] { advaug::parse_corruption("Fog"); },
                                        {"parse_corruption()", "'Fog'", "shot_noise, impulse_noise",
                                         "canny_edges, gaussian_noise, contrast"});
    check_throws<std::invalid_argument>([] { advaug::to_string(static_cast<corruption>(17)); },
                                        {"to_string()", "not a corruption", "17"});
}

// ---------------------------------------------------------------------------------------------
// Common properties of every corruption
// ---------------------------------------------------------------------------------------------

TEST_CASE(
    "corruptions: deterministic per seed, seeds matter exactly when random, outputs in [0, 1]") {
    const image x = synthetic();
    for (corruption c : advaug::all_corruptions()) {
        CAPTURE(advaug::to_string(c));
        for (int s = 1; s <= 5; ++s) {
            CAPTURE(s);
            const image a = corrupted(x, c, s, 42);
            CHECK(in_unit_range(a));
            CHECK(a == corrupted(x, c, s, 42));
            // Some random corruptions draw only a sign (rotate) or two (translate), so two
            // seeds may agree; eight may not.
            std::set<std::vector<double>> outputs;
            for (std::uint64_t seed = 0; seed < 8; ++seed) {
                const image b = corrupted(x, c, s, seed);
                outputs.insert(std::vector<double>(b.begin(), b.end()));
            }
            if (advaug::is_random(c))
                CHECK(outputs.size() > 1);
            else
                CHECK(outputs.size() == 1);
        }
    }
}

TEST_CASE("corruptions: extreme inputs (all 0, all 1) stay in [0, 1]") {
    for (corruption c : advaug::all_corruptions()) {
        CAPTURE(advaug::to_string(c));
        for (double v : {0.0, 1.0})
            for (int s : {1, 5}) CHECK(in_unit_range(corrupted(filled(28, 28, v), c, s, 3)));
        // Sizes other than 28 x 28 work too.
        CHECK(in_unit_range(corrupted(synthetic(), c, 3, 1)));
        image small = filled(5, 9, 0.5);
        small(2, 4) = 1.0;
        CHECK(in_unit_range(corrupted(small, c, 5, 1)));
        image one = filled(1, 1, 0.3);
        CHECK(in_unit_range(corrupted(one, c, 5, 1)));
    }
}

TEST_CASE("corruptions: severity 1 changes real images less than severity 5") {
    const auto images = real_images(8);
    if (images.empty()) {
        advaug::testing::skip(fashion_mnist_skip_message());
        return;
    }
    for (corruption c : advaug::all_corruptions()) {
        CAPTURE(advaug::to_string(c));
        double mild = 0.0, severe = 0.0;
        for (std::size_t i = 0; i < images.size(); ++i)
            for (std::uint64_t seed : {1u, 2u}) {
                mild += mean_abs_diff(corrupted(images[i], c, 1, seed + 10 * i), images[i]);
                severe += mean_abs_diff(corrupted(images[i], c, 5, seed + 10 * i), images[i]);
            }
        CHECK(mild > 0.0);
        CHECK(mild < severe);
    }
}

// ---------------------------------------------------------------------------------------------
// Each corruption does what its name says
// ---------------------------------------------------------------------------------------------

TEST_CASE("corruptions: shot_noise is unbiased Poisson noise, stronger at higher severity") {
    const image gray = filled(64, 64, 0.5);
    const double rates[] = {60, 25, 12};
    for (int s = 1; s <= 3; ++s) {
        const image y = corrupted(gray, corruption::shot_noise, s, 7);
        CHECK(pixel_mean(y) == doctest::Approx(0.5).epsilon(0.03));
        const double expected = std::sqrt(0.5 / rates[s - 1]);  // Poisson: var = lambda
        CHECK(pixel_std(y) == doctest::Approx(expected).epsilon(0.1));
        // Values are counts divided by the rate.
        const auto off_grid = std::count_if(y.begin(), y.end(), [&](double v) {
            return std::abs(v * rates[s - 1] - std::round(v * rates[s - 1])) > 1e-9;
        });
        CHECK(off_grid == 0);
    }
    CHECK(corrupted(filled(8, 8, 0.0), corruption::shot_noise, 5, 1) == filled(8, 8, 0.0));
}

TEST_CASE("corruptions: impulse_noise sets about the severity's fraction of pixels to 0 or 1") {
    const image gray = filled(100, 100, 0.5);
    const double amounts[] = {0.03, 0.06, 0.09, 0.17, 0.27};
    for (int s = 1; s <= 5; ++s) {
        CAPTURE(s);
        const image y = corrupted(gray, corruption::impulse_noise, s, 11);
        int salt = 0, pepper = 0, other = 0;
        for (double v : y) {
            if (v == 1.0)
                ++salt;
            else if (v == 0.0)
                ++pepper;
            else if (v != 0.5)
                ++other;
        }
        CHECK(other == 0);  // every pixel is 0, 1 or untouched
        const double fraction = (salt + pepper) / 10000.0;
        CHECK(std::abs(fraction - amounts[s - 1]) < 4.0 * std::sqrt(amounts[s - 1] / 10000.0));
        CHECK(salt == doctest::Approx(pepper).epsilon(0.3));
    }
}

TEST_CASE("corruptions: glass_blur blurs and keeps the mean") {
    std::vector<image> images = real_images(4);
    images.push_back(synthetic());
    auto roughness = [](const image& x) {  // sum of squared neighbour differences
        double sum = 0.0;
        for (std::size_t r = 0; r < x.shape(0); ++r)
            for (std::size_t c = 0; c + 1 < x.shape(1); ++c)
                sum += std::pow(x(r, c + 1) - x(r, c), 2) +
                       (r + 1 < x.shape(0) ? std::pow(x(r + 1, c) - x(r, c), 2) : 0.0);
        return sum;
    };
    for (const image& x : images) {
        for (int s : {1, 3, 5}) {
            const image y = corrupted(x, corruption::glass_blur, s, 5);
            CHECK(pixel_mean(y) == doctest::Approx(pixel_mean(x)).epsilon(0.03));
            CHECK(roughness(y) < 0.5 * roughness(x));
        }
    }
}

TEST_CASE(
    "corruptions: motion_blur spreads a bright pixel along a line within 45 degrees of "
    "horizontal") {
    image dot = filled(41, 41, 0.0);
    dot(20, 20) = 1.0;
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
        CAPTURE(seed);
        const image y = corrupted(dot, corruption::motion_blur, 1, seed);
        CHECK(pixel_sum(y) == doctest::Approx(1.0).epsilon(1e-9));
        // Principal axis of the spread.
        const point m = centre_of_mass(y);
        double srr = 0, scc = 0, src = 0;
        for (std::size_t r = 0; r < 41; ++r)
            for (std::size_t c = 0; c < 41; ++c) {
                srr += y(r, c) * (r - m.row) * (r - m.row);
                scc += y(r, c) * (c - m.col) * (c - m.col);
                src += y(r, c) * (r - m.row) * (c - m.col);
            }
        const double angle = 0.5 * std::atan2(2 * src, scc - srr);  // of the major axis
        const double dr = std::sin(angle), dc = std::cos(angle);
        const double major = srr * dr * dr + scc * dc * dc + 2 * src * dr * dc;
        const double minor = srr * dc * dc + scc * dr * dr - 2 * src * dr * dc;
        // Spread over several pixels: a one-sided Gaussian of sigma 3 (severity 1) has
        // variance 9 (1 - 2 / pi) = 3.3.
        CHECK(major > 2.5);
        CHECK(minor < 0.1 * major);  // ... along a line
        CHECK(std::abs(angle) <= std::numbers::pi / 4 + 0.1);
        // One-sided, like a moving object: the source pixel is at one end of the streak.
        int before = 0, after = 0;
        for (std::size_t r = 0; r < 41; ++r)
            for (std::size_t c = 0; c < 41; ++c) {
                if (y(r, c) < 1e-6) continue;
                const double t = (c - 20.0) * dc + (r - 20.0) * dr;
                before += t < -0.75;
                after += t > 0.75;
            }
        CHECK(std::min(before, after) == 0);
        CHECK(std::max(before, after) >= 8);
    }
}

TEST_CASE("corruptions: shear slants a vertical bar by sin(angle)") {
    image bar = filled(28, 28, 0.0);
    for (std::size_t r = 4; r < 24; ++r) bar(r, 13) = bar(r, 14) = 1.0;
    const double angles[] = {0.2, 0.4, 0.6, 0.8, 1.0};
    for (int s = 1; s <= 5; ++s) {
        CAPTURE(s);
        const image y = corrupted(bar, corruption::shear, s, 3);
        // Column centre of mass of each row that holds the bar, fitted against the row.
        std::vector<double> rows, cols;
        for (std::size_t r = 0; r < 28; ++r) {
            double m = 0, mc = 0;
            for (std::size_t c = 0; c < 28; ++c) m += y(r, c), mc += c * y(r, c);
            if (m > 1.0 && r > 6 && r < 21) rows.push_back(r), cols.push_back(mc / m);
        }
        REQUIRE(rows.size() >= 8);
        const double n = rows.size();
        double sr = 0, sc = 0, srr = 0, src = 0;
        for (std::size_t i = 0; i < rows.size(); ++i)
            sr += rows[i], sc += cols[i], srr += rows[i] * rows[i], src += rows[i] * cols[i];
        const double slope = (n * src - sr * sc) / (n * srr - sr * sr);
        CHECK(std::abs(slope) == doctest::Approx(std::sin(angles[s - 1])).epsilon(0.05));
    }
}

TEST_CASE("corruptions: scale shrinks about the centre by the severity's factor") {
    const image disc = bump(28, 28, 13.5, 13.5, 3.0);
    const double factors[] = {0.9, 0.8, 0.7, 0.6, 0.5};
    for (int s = 1; s <= 5; ++s) {
        CAPTURE(s);
        const image y = corrupted(disc, corruption::scale, s, 0);
        const double f = factors[s - 1];
        CHECK(pixel_sum(y) == doctest::Approx(pixel_sum(disc) * f * f).epsilon(0.03));
        const point p = centre_of_mass(y);
        CHECK(p.row == doctest::Approx(13.5).epsilon(1e-6));
        CHECK(p.col == doctest::Approx(13.5).epsilon(1e-6));
    }
}

TEST_CASE("corruptions: rotate turns an off-centre blob by the severity's angle about the centre") {
    const double cx = 13.5, cy = 13.5, radius = 8.0;
    const image blob = bump(28, 28, cy, cx + radius, 1.5);
    const double angles[] = {0.2, 0.4, 0.6, 0.8, 1.0};
    std::set<int> signs;
    for (int s = 1; s <= 5; ++s) {
        for (std::uint64_t seed = 0; seed < 4; ++seed) {
            CAPTURE(s);
            const point p = centre_of_mass(corrupted(blob, corruption::rotate, s, seed));
            const double turned = std::atan2(p.row - cy, p.col - cx);
            CHECK(std::abs(turned) == doctest::Approx(angles[s - 1]).epsilon(0.03));
            CHECK(std::hypot(p.row - cy, p.col - cx) == doctest::Approx(radius).epsilon(0.03));
            signs.insert(turned > 0 ? 1 : -1);
        }
    }
    CHECK(signs.size() == 2);  // both directions occur
    // A centred disc hardly changes.
    image disc = filled(28, 28, 0.0);
    for (std::size_t r = 0; r < 28; ++r)
        for (std::size_t c = 0; c < 28; ++c) disc(r, c) = std::hypot(r - cy, c - cx) < 8.0;
    CHECK(mean_abs_diff(corrupted(disc, corruption::rotate, 5, 1), disc) < 0.02);
}

TEST_CASE("corruptions: brightness adds the severity's shift") {
    const image x = synthetic();  // values <= 0.9
    const double shifts[] = {0.1, 0.2, 0.3, 0.4, 0.5};
    for (int s = 1; s <= 5; ++s) {
        const image y = corrupted(x, corruption::brightness, s, 0);
        for (std::size_t i = 0; i < x.size(); ++i)
            CHECK(y.flat(i) == doctest::Approx(std::min(1.0, x.flat(i) + shifts[s - 1])));
        CHECK(pixel_mean(y) > pixel_mean(x));
    }
}

TEST_CASE("corruptions: translate moves the centre of mass by the severity in x and y") {
    const image blob = bump(28, 28, 13.0, 14.0, 2.0);
    const point before = centre_of_mass(blob);
    std::set<std::pair<int, int>> directions;
    for (int s = 1; s <= 5; ++s) {
        for (std::uint64_t seed = 0; seed < 8; ++seed) {
            CAPTURE(s);
            const image y = corrupted(blob, corruption::translate, s, seed);
            const point after = centre_of_mass(y);
            CHECK(std::abs(after.col - before.col) == doctest::Approx(s).epsilon(0.01));
            CHECK(std::abs(after.row - before.row) == doctest::Approx(s).epsilon(0.01));
            CHECK(pixel_sum(y) == doctest::Approx(pixel_sum(blob)).epsilon(0.01));
            directions.insert({after.col > before.col, after.row > before.row});
        }
    }
    CHECK(directions.size() == 4);
}

TEST_CASE("corruptions: stripe inverts bands at the left and right edges") {
    const double widths[] = {3, 5, 7, 9, 11};
    for (std::size_t w : {28u, 56u}) {
        for (int s = 1; s <= 5; ++s) {
            CAPTURE(w);
            CAPTURE(s);
            const image y = corrupted(filled(20, w, 0.0), corruption::stripe, s, 0);
            const auto band = static_cast<std::size_t>(std::lround(widths[s - 1] * w / 28.0));
            for (std::size_t c = 0; c < w; ++c)
                CHECK(y(7, c) == (c < band || c >= w - band ? 1.0 : 0.0));
        }
    }
    const image x = synthetic();
    const image twice = corrupted(corrupted(x, corruption::stripe, 3, 0), corruption::stripe, 3, 0);
    CHECK(xt::amax(xt::abs(twice - x))() < 1e-12);  // an involution
}

TEST_CASE("corruptions: fog lifts dark pixels with a structured haze") {
    const image x = bump(28, 28, 14.0, 14.0, 3.0);  // peak 1, dark surroundings
    for (int s : {1, 3, 5}) {
        CAPTURE(s);
        const image y = corrupted(x, corruption::fog, s, 9);
        double lifted = 0.0;
        int dark = 0;
        image background = filled(10, 28, 0.0);
        for (std::size_t r = 0; r < 28; ++r)
            for (std::size_t c = 0; c < 28; ++c)
                if (x(r, c) < 0.01) lifted += y(r, c) - x(r, c), ++dark;
        for (std::size_t r = 0; r < 10; ++r)
            for (std::size_t c = 0; c < 28; ++c) background(r, c) = y(r, c);
        CHECK(lifted / dark > 0.1);
        CHECK(pixel_std(background) > 0.01);  // not a flat gray: the plasma has structure
        CHECK(y(14, 14) < 1.0);               // the haze also veils the bright parts
    }
}

TEST_CASE("corruptions: spatter adds mud-gray blobs, more at higher severity") {
    const double gray = 63.0 / 255.0;
    double covered[6] = {};
    for (int s = 1; s <= 5; ++s) {
        for (std::uint64_t seed = 0; seed < 20; ++seed) {
            const image black = corrupted(filled(28, 28, 0.0), corruption::spatter, s, seed);
            const image white = corrupted(filled(28, 28, 1.0), corruption::spatter, s, seed);
            for (std::size_t i = 0; i < black.size(); ++i) {
                const double b = black.flat(i), w = white.flat(i);
                if (b == 0.0) {
                    CHECK(w == 1.0);
                    continue;
                }
                // x (1 - m) + gray m with mask m in [0.8, 1]
                CHECK(b >= 0.8 * gray - 1e-12);
                CHECK(b <= gray + 1e-12);
                CHECK(w == doctest::Approx(1.0 - b / gray * (1.0 - gray)));
                covered[s] += 1.0;
            }
        }
        CAPTURE(s);
        if (s > 1) CHECK(covered[s] > covered[s - 1]);
    }
    // Blobs, not speckle: few connected pieces for the area covered.
    const image y = corrupted(filled(28, 28, 0.0), corruption::spatter, 3, 4);
    CHECK(components(y, 0.0) * 10 <
          std::count_if(y.begin(), y.end(), [](double v) { return v > 0; }));
}

TEST_CASE("corruptions: dotted_line adds dashed bright lines") {
    const image black = filled(28, 28, 0.0);
    for (int s = 1; s <= 5; ++s) {
        CAPTURE(s);
        const image y = corrupted(black, corruption::dotted_line, s, 21);
        CHECK(*std::max_element(y.begin(), y.end()) == doctest::Approx(1.0).epsilon(0.02));
        // A line across 28 columns in 2-on, 2-off dashes has about 7 dashes.
        CHECK(components(y, 0.5) >= 5);
        // Lines only add light.
        const image x = synthetic();
        const image z = corrupted(x, corruption::dotted_line, s, 21);
        for (std::size_t i = 0; i < x.size(); ++i) CHECK(z.flat(i) >= x.flat(i));
    }
    // One line at severity 1: the bright pixels of each column lie within a band of rows.
    const image one = corrupted(black, corruption::dotted_line, 1, 5);
    int lit_columns = 0;
    for (std::size_t c = 0; c < 28; ++c) {
        std::vector<std::size_t> rows;
        for (std::size_t r = 0; r < 28; ++r)
            if (one(r, c) > 0.5) rows.push_back(r);
        if (rows.empty()) continue;
        ++lit_columns;
        CHECK(rows.back() - rows.front() <= 3);
    }
    CHECK(lit_columns >= 10);
    CHECK(lit_columns <= 20);  // the gaps of the dashes
}

TEST_CASE("corruptions: zigzag adds bright zigzag lines") {
    const image black = filled(28, 28, 0.0);
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
        CAPTURE(seed);
        const image y = corrupted(black, corruption::zigzag, 1, seed);
        // The brightness-weighted row of each column goes up and down along the line.
        std::vector<double> centre;
        for (std::size_t c = 3; c <= 24; ++c) {
            double m = 0, mr = 0;
            for (std::size_t r = 0; r < 28; ++r) m += y(r, c), mr += r * y(r, c);
            if (m > 0.5) centre.push_back(mr / m);
        }
        REQUIRE(centre.size() >= 18);
        // MNIST-C's teeth: a vertex every 4 columns, so about 5 turns over 22 columns.
        int turns = 0;
        for (std::size_t i = 2; i < centre.size(); ++i)
            turns += (centre[i] - centre[i - 1]) * (centre[i - 1] - centre[i - 2]) < 0;
        CHECK(turns >= 4);
        const auto [low, high] = std::minmax_element(centre.begin(), centre.end());
        CHECK(*high - *low >= 2.0);
        CHECK(*std::max_element(y.begin(), y.end()) == doctest::Approx(1.0));
    }
    const image x = synthetic();
    const image z = corrupted(x, corruption::zigzag, 5, 3);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(z.flat(i) >= x.flat(i));
    CHECK(pixel_mean(z) > pixel_mean(x) + 0.05);
}

TEST_CASE("corruptions: canny_edges is a thin edge map at the boundary of a square") {
    image square = filled(28, 28, 0.0);
    for (std::size_t r = 8; r < 20; ++r)
        for (std::size_t c = 8; c < 20; ++c) square(r, c) = 1.0;
    for (int s = 1; s <= 5; ++s) {
        CAPTURE(s);
        const image y = corrupted(square, corruption::canny_edges, s, 0);
        int edges = 0;
        for (std::size_t r = 0; r < 28; ++r)
            for (std::size_t c = 0; c < 28; ++c) {
                REQUIRE((y(r, c) == 0.0 || y(r, c) == 1.0));
                if (y(r, c) == 0.0) continue;
                ++edges;
                // Distance to the square's boundary (the lines at 7.5 and 19.5).
                const double dr = std::min(std::abs(r - 7.5), std::abs(r - 19.5));
                const double dc = std::min(std::abs(c - 7.5), std::abs(c - 19.5));
                const bool inside_span = (r >= 6 && r <= 21) && (c >= 6 && c <= 21);
                CHECK(inside_span);
                CHECK(std::min(dr, dc) <= 1.5);
            }
        CHECK(edges >= 36);  // the perimeter is 48 pixels
        CHECK(edges <= 56);
        CHECK(edges < 0.1 * 28 * 28);  // mostly 0
        // Thin: one pixel where each side is crossed, away from the corners.
        for (std::size_t i = 11; i <= 16; ++i) {
            int in_row = 0, in_col = 0;
            for (std::size_t j = 0; j < 28; ++j) in_row += y(i, j) == 1.0, in_col += y(j, i) == 1.0;
            CHECK(in_row == 2);
            CHECK(in_col == 2);
        }
    }
    CHECK(pixel_sum(corrupted(filled(28, 28, 0.6), corruption::canny_edges, 1, 0)) == 0.0);
}

TEST_CASE("corruptions: gaussian_noise adds zero-mean noise of the severity's sigma") {
    const image gray = filled(100, 100, 0.5);
    const double sigmas[] = {0.08, 0.12, 0.18};
    for (int s = 1; s <= 3; ++s) {
        const image y = corrupted(gray, corruption::gaussian_noise, s, 17);
        CHECK(pixel_mean(y) == doctest::Approx(0.5).epsilon(0.02));
        CHECK(pixel_std(y) == doctest::Approx(sigmas[s - 1]).epsilon(0.05));
    }
}

TEST_CASE("corruptions: contrast shrinks the spread around the mean by the severity's factor") {
    const image x = synthetic();
    const double factors[] = {0.4, 0.3, 0.2, 0.1, 0.05};
    for (int s = 1; s <= 5; ++s) {
        const image y = corrupted(x, corruption::contrast, s, 0);
        CHECK(pixel_mean(y) == doctest::Approx(pixel_mean(x)));
        CHECK(pixel_std(y) == doctest::Approx(pixel_std(x) * factors[s - 1]));
    }
}

// ---------------------------------------------------------------------------------------------
// Batches and element types
// ---------------------------------------------------------------------------------------------

TEST_CASE(
    "corruptions: corrupt_batch corrupts sample i as corrupt() with corruption_seed(seed, i)") {
    const std::size_t n = 3;
    tensor<double, 2> rows = tensor<double, 2>::from_shape({n, 28 * 28});
    std::vector<image> singles;
    for (std::size_t i = 0; i < n; ++i) {
        image x = synthetic();
        x = x * (1.0 - 0.2 * i);
        singles.push_back(x);
        std::copy(x.begin(), x.end(), rows.begin() + i * 784);
    }
    for (corruption c : advaug::all_corruptions()) {
        CAPTURE(advaug::to_string(c));
        tensor<double, 2> flat = rows;
        tensor<double, 4> nchw = tensor<double, 4>::from_shape({n, 1, 28, 28});
        std::copy(rows.begin(), rows.end(), nchw.begin());
        advaug::corrupt_batch(flat, 28, 28, c, 4, 99);
        advaug::corrupt_batch(nchw, 28, 28, c, 4, 99);
        for (std::size_t i = 0; i < n; ++i) {
            const image expected = corrupted(singles[i], c, 4, advaug::corruption_seed(99, i));
            CHECK(std::equal(expected.begin(), expected.end(), flat.begin() + i * 784));
            CHECK(std::equal(expected.begin(), expected.end(), nchw.begin() + i * 784));
        }
    }
    CHECK(advaug::corruption_seed(99, 0) != advaug::corruption_seed(99, 1));
    CHECK(advaug::corruption_seed(99, 0) != advaug::corruption_seed(100, 0));

    tensor<float, 2> empty = tensor<float, 2>::from_shape({0, 784});
    CHECK_NOTHROW(advaug::corrupt_batch(empty, 28, 28, corruption::fog, 3, 1));
}

TEST_CASE("corruptions: float images get the double result, rounded") {
    const image x = synthetic();
    tensor<float, 2> xf = xt::cast<float>(x);
    const image xd = xt::cast<double>(xf);  // the same values exactly
    for (corruption c : advaug::all_corruptions()) {
        CAPTURE(advaug::to_string(c));
        tensor<float, 2> yf = xf;
        advaug::corrupt(yf, c, 3, 5);
        const image yd = corrupted(xd, c, 3, 5);
        for (std::size_t i = 0; i < x.size(); ++i)
            CHECK(yf.flat(i) == static_cast<float>(yd.flat(i)));
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("corruptions: bad arguments are refused with messages, and nothing is changed") {
    image x = synthetic();
    const image original = x;
    for (int s : {0, 6, -1}) {
        check_throws<std::invalid_argument>(
            [&] { advaug::corrupt(x, corruption::fog, s, 0); },
            {"corrupt()", "severity must be in 1..5", "got " + std::to_string(s)});
    }
    check_throws<std::invalid_argument>(
        [&] { advaug::corrupt(x, static_cast<corruption>(40), 1, 0); },
        {"corrupt()", "not a corruption", "40"});

    x(2, 3) = 1.5;
    check_throws<std::invalid_argument>([&] { advaug::corrupt(x, corruption::rotate, 1, 0); },
                                        {"corrupt()", "image", "[0, 1]", "1.5", "(2, 3)"});
    x(2, 3) = std::numeric_limits<double>::quiet_NaN();
    check_throws<std::invalid_argument>([&] { advaug::corrupt(x, corruption::rotate, 1, 0); },
                                        {"corrupt()", "image", "nan", "(2, 3)"});
    x(2, 3) = -0.25;
    check_throws<std::invalid_argument>([&] { advaug::corrupt(x, corruption::rotate, 1, 0); },
                                        {"-0.25", "(2, 3)"});
    x(2, 3) = original(2, 3);
    CHECK(x == original);

    image empty = image::from_shape({0, 28});
    check_throws<std::invalid_argument>([&] { advaug::corrupt(empty, corruption::fog, 1, 0); },
                                        {"corrupt()", "empty", "[0, 28]"});

    tensor<float, 2> rows = tensor<float, 2>::from_shape({3, 780});
    rows.fill(0.5f);
    check_throws<std::invalid_argument>(
        [&] { advaug::corrupt_batch(rows, 28, 28, corruption::fog, 1, 0); },
        {"corrupt_batch()", "[3, 780]", "[N, 784]", "height 28", "width 28"});
    tensor<float, 4> nchw = tensor<float, 4>::from_shape({3, 1, 28, 27});
    nchw.fill(0.5f);
    check_throws<std::invalid_argument>(
        [&] { advaug::corrupt_batch(nchw, 28, 28, corruption::fog, 1, 0); },
        {"corrupt_batch()", "[3, 1, 28, 27]", "[N, 1, 28, 28]"});
    check_throws<std::invalid_argument>(
        [&] { advaug::corrupt_batch(rows, 0, 780, corruption::fog, 1, 0); },
        {"corrupt_batch()", "height and width must be positive", "height 0"});
    check_throws<std::invalid_argument>(
        [&] { advaug::corrupt_batch(rows, 26, 30, corruption::fog, 9, 0); },
        {"corrupt_batch()", "severity", "got 9"});

    // A bad value in a later sample: found before the first sample is touched.
    tensor<float, 2> batch = tensor<float, 2>::from_shape({3, 784});
    batch.fill(0.25f);
    batch(2, 30) = 2.0f;
    const tensor<float, 2> before = batch;
    check_throws<std::invalid_argument>(
        [&] { advaug::corrupt_batch(batch, 28, 28, corruption::brightness, 1, 0); },
        {"corrupt_batch()", "batch", "[0, 1]", "got 2", "sample 2", "(1, 2)"});
    CHECK(batch == before);
}

}  // namespace test_image_corruptions
