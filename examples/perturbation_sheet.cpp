// perturbation_sheet.cpp: each named perturbation family (advaug/perturbations/natural.hpp) at
// three budgets, on the same Fashion-MNIST test images, as one PNG.
//
// Rows are the families in enumeration order (rotation, translation, scale, shear, brightness,
// contrast, gamma, blur, displacement). For each of two test images (the first T-shirt and the
// first sneaker) the columns are the clean image and the family at its three budgets (printed
// by the program and listed in docs/perturbations.md). A budget is a set; the sheet shows its
// edge: every parameter at the top of its interval (rotation +b degrees, translation +b
// pixels in x and y, blur sigma b, ...), except the displacement field, whose edge is a plain
// shift, shown by a seeded random draw from its budget instead. Tiles are scaled 2x and
// separated by 2-pixel grey gaps. docs/images/perturbation_families.png was made with
//
//   perturbation_sheet docs/images/perturbation_families.png
//
//   perturbation_sheet [OUTPUT] [--data DIR] [--seed N]
//
// OUTPUT defaults to perturbation_families.png, DIR to the installed Fashion-MNIST
// (advaug::default_fashion_mnist_dir()), N (the displacement draw) to 0.

#include <advaug/data/idx.hpp>
#include <advaug/io/png.hpp>
#include <advaug/perturbations/perturbations.hpp>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct options {
    std::string output = "perturbation_families.png";
    std::string data = advaug::default_fashion_mnist_dir();
    std::uint64_t seed = 0;
};

options parse(int argc, char** argv) {
    options o;
    bool output_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--data" && has_value) {
            o.data = argv[++i];
        } else if (arg == "--seed" && has_value) {
            o.seed = std::strtoull(argv[++i], nullptr, 10);
        } else if (arg == "--help" || arg == "-h" || arg.rfind("--", 0) == 0 || output_given) {
            std::fprintf(stderr, "usage: perturbation_sheet [OUTPUT] [--data DIR] [--seed N]\n");
            std::exit(arg == "--help" || arg == "-h" ? 0 : 2);
        } else {
            o.output = arg;
            output_given = true;
        }
    }
    return o;
}

/// The three budgets shown for each family, in its unit (advaug::budget_unit).
std::array<double, 3> budgets(advaug::natural_family f) {
    using advaug::natural_family;
    switch (f) {
        case natural_family::rotation: return {10, 20, 30};
        case natural_family::translation: return {1, 2, 3};
        case natural_family::scale: return {0.1, 0.2, 0.3};
        case natural_family::shear: return {0.1, 0.2, 0.3};
        case natural_family::brightness: return {0.1, 0.2, 0.3};
        case natural_family::contrast: return {0.3, 0.6, 0.9};
        case natural_family::gamma: return {0.3, 0.6, 0.9};
        case natural_family::blur: return {0.5, 1.0, 1.5};
        case natural_family::displacement: return {0.5, 1.0, 2.0};
    }
    throw std::logic_error("unknown family");
}

}  // namespace

int main(int argc, char** argv) try {
    const options opt = parse(argc, argv);
    const advaug::fashion_mnist data = advaug::load_fashion_mnist(opt.data);
    const std::size_t h = data.test_images.shape(1), w = data.test_images.shape(2);

    // The first test image of each of these classes: T-shirt/top, sneaker.
    const std::vector<std::int64_t> classes = {0, 7};
    advaug::tensor<float, 2> x = advaug::tensor<float, 2>::from_shape({classes.size(), h * w});
    for (std::size_t r = 0; r < classes.size(); ++r) {
        std::size_t i = 0;
        while (i < data.test_labels.size() && data.test_labels(i) != classes[r]) ++i;
        if (i == data.test_labels.size()) throw std::runtime_error("no test image of class " + std::to_string(classes[r]));
        for (std::size_t p = 0; p < h * w; ++p) x(r, p) = static_cast<float>(data.test_images.data()[i * h * w + p]) / 255.0f;
    }

    const std::vector<advaug::natural_family> families = advaug::all_natural_families();
    const std::size_t zoom = 2, gap = 2, columns = classes.size() * 4;
    const std::size_t tile_h = h * zoom, tile_w = w * zoom;
    const std::size_t sheet_h = families.size() * tile_h + (families.size() + 1) * gap;
    const std::size_t sheet_w = columns * tile_w + (columns + 1) * gap + gap;  // a wider gap between images
    advaug::tensor<std::uint8_t, 2> sheet = advaug::tensor<std::uint8_t, 2>::from_shape({sheet_h, sheet_w});
    sheet.fill(128);

    // Row `r` of a [N, H * W] batch into tile (row, col), each pixel a zoom x zoom block.
    auto place = [&](const advaug::tensor<float, 2>& batch, std::size_t r, std::size_t row, std::size_t col) {
        advaug::tensor<float, 2> img = advaug::tensor<float, 2>::from_shape({h, w});
        std::copy(batch.data() + r * h * w, batch.data() + (r + 1) * h * w, img.data());
        const advaug::tensor<std::uint8_t, 2> g = advaug::io::to_gray8(img);
        const std::size_t top = gap + row * (tile_h + gap);
        const std::size_t left = gap + col * (tile_w + gap) + (col >= 4 ? gap : 0);
        for (std::size_t y = 0; y < tile_h; ++y)
            for (std::size_t c = 0; c < tile_w; ++c) sheet(top + y, left + c) = g(y / zoom, c / zoom);
    };

    const advaug::image_shape shape{1, h, w};
    for (std::size_t row = 0; row < families.size(); ++row) {
        const advaug::natural_family f = families[row];
        std::printf("%-13s", std::string(advaug::to_string(f)).c_str());
        for (std::size_t k = 0; k < 3; ++k) {
            const double b = budgets(f)[k];
            std::printf(" %g", b);
            advaug::with_natural_family<float>(f, shape, advaug::input_domain{}, [&](auto make) {
                const auto family = make(b);
                advaug::tensor<float, 2> theta;
                if (f == advaug::natural_family::displacement) {
                    family.sample(classes.size(), opt.seed, theta);
                } else {  // the top of every interval
                    theta = advaug::tensor<float, 2>::from_shape({classes.size(), family.num_params()});
                    theta.fill(1e9f);
                    family.project(theta);
                }
                const advaug::tensor<float, 2> y = advaug::perturb(family, x, theta);
                for (std::size_t r = 0; r < classes.size(); ++r) {
                    if (k == 0) place(x, r, row, 4 * r);
                    place(y, r, row, 4 * r + 1 + k);
                }
                return 0;
            });
        }
        std::printf(" %s\n", std::string(advaug::budget_unit(f)).c_str());
    }
    advaug::io::write_png(opt.output, sheet);
    std::printf("wrote %s: %zu x %zu pixels, %zu families x 2 images x (clean + 3 budgets)\n", opt.output.c_str(),
                sheet_w, sheet_h, families.size());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "perturbation_sheet: %s\n", e.what());
    return 1;
}
