// corruption_sheet.cpp: every image corruption at one severity, side by side, as a PNG.
//
// Rows are four Fashion-MNIST test images (the first T-shirt, trouser, sneaker and bag);
// columns are the clean image and then each corruption of advaug/shifts/image_corruptions.hpp
// in enumeration order (shot_noise ... canny_edges, gaussian_noise, contrast). Tiles are
// scaled 2x and separated by 2-pixel gray gaps. docs/images/corruptions_severity3.png was
// made with
//
//   corruption_sheet docs/images/corruptions_severity3.png
//
//   corruption_sheet [OUTPUT] [--data DIR] [--severity S] [--seed N] [--stats]
//
// OUTPUT defaults to corruptions_severity<S>.png, DIR to the installed Fashion-MNIST
// (advaug::default_fashion_mnist_dir()), S to 3 and N to 0. --stats also prints, for every
// corruption and severity, how much it changes an image: the mean of |corrupted - clean| over
// the first 16 test images and 3 seeds each (the table in docs/corruptions.md).

#include <advaug/data/idx.hpp>
#include <advaug/io/png.hpp>
#include <advaug/shifts/image_corruptions.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct options {
    std::string output;
    std::string data = advaug::default_fashion_mnist_dir();
    int severity = 3;
    std::uint64_t seed = 0;
    bool stats = false;
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--data" && has_value) {
            o.data = argv[++i];
        } else if (arg == "--severity" && has_value) {
            o.severity = std::atoi(argv[++i]);
        } else if (arg == "--seed" && has_value) {
            o.seed = std::strtoull(argv[++i], nullptr, 10);
        } else if (arg == "--stats") {
            o.stats = true;
        } else if (arg == "--help" || arg == "-h" || arg.rfind("--", 0) == 0 || !o.output.empty()) {
            std::fprintf(stderr,
                         "usage: corruption_sheet [OUTPUT] [--data DIR] [--severity S] [--seed N] "
                         "[--stats]\n");
            std::exit(arg == "--help" || arg == "-h" ? 0 : 2);
        } else {
            o.output = arg;
        }
    }
    if (o.output.empty()) o.output = "corruptions_severity" + std::to_string(o.severity) + ".png";
    return o;
}

/// Test image i of `images` with pixels scaled to [0, 1], the range the corruptions expect.
advaug::tensor<float, 2> to_unit(const advaug::tensor<std::uint8_t, 3>& images, std::size_t i) {
    const std::size_t h = images.shape(1), w = images.shape(2);
    advaug::tensor<float, 2> x = advaug::tensor<float, 2>::from_shape({h, w});
    for (std::size_t y = 0; y < h; ++y)
        for (std::size_t c = 0; c < w; ++c) x(y, c) = static_cast<float>(images(i, y, c)) / 255.0f;
    return x;
}

/// Mean |corrupted - clean| per corruption and severity, over 16 images and 3 seeds each.
void print_stats(const advaug::tensor<std::uint8_t, 3>& images, std::uint64_t seed) {
    std::printf("%-15s %8s %8s %8s %8s %8s\n", "mean |change|", "1", "2", "3", "4", "5");
    for (advaug::corruption c : advaug::all_corruptions()) {
        std::printf("%-15s", std::string(advaug::to_string(c)).c_str());
        for (int severity = 1; severity <= 5; ++severity) {
            double sum = 0.0;
            for (std::size_t i = 0; i < 16; ++i) {
                const advaug::tensor<float, 2> clean = to_unit(images, i);
                for (std::uint64_t k = 0; k < 3; ++k) {
                    advaug::tensor<float, 2> x = clean;
                    advaug::corrupt(x, c, severity, advaug::corruption_seed(seed, 3 * i + k));
                    sum += xt::mean(xt::abs(x - clean))();
                }
            }
            std::printf(" %8.4f", sum / 48.0);
        }
        std::printf("\n");
    }
}

}  // namespace

int main(int argc, char** argv) try {
    const options opt = parse(argc, argv);
    const advaug::fashion_mnist data = advaug::load_fashion_mnist(opt.data);
    const std::size_t h = data.test_images.shape(1), w = data.test_images.shape(2);

    // The first test image of each of these classes: T-shirt/top, trouser, sneaker, bag.
    const std::vector<std::int64_t> classes = {0, 1, 7, 8};
    std::vector<std::size_t> rows;
    for (std::int64_t label : classes) {
        std::size_t i = 0;
        while (i < data.test_labels.size() && data.test_labels(i) != label) ++i;
        if (i == data.test_labels.size()) {
            throw std::runtime_error("no test image of class " + std::to_string(label));
        }
        rows.push_back(i);
    }

    const std::vector<advaug::corruption> columns = advaug::all_corruptions();
    const std::size_t zoom = 2, gap = 2;
    const std::size_t tile_h = h * zoom, tile_w = w * zoom;
    const std::size_t sheet_h = rows.size() * tile_h + (rows.size() + 1) * gap;
    const std::size_t sheet_w = (columns.size() + 1) * tile_w + (columns.size() + 2) * gap;
    advaug::tensor<std::uint8_t, 2> sheet =
        advaug::tensor<std::uint8_t, 2>::from_shape({sheet_h, sheet_w});
    sheet.fill(128);  // the gaps

    // Copies an image into tile (row, col), each pixel as a zoom x zoom block.
    auto place = [&](const advaug::tensor<float, 2>& img, std::size_t row, std::size_t col) {
        const advaug::tensor<std::uint8_t, 2> g = advaug::io::to_gray8(img);
        const std::size_t top = gap + row * (tile_h + gap), left = gap + col * (tile_w + gap);
        for (std::size_t y = 0; y < tile_h; ++y)
            for (std::size_t x = 0; x < tile_w; ++x)
                sheet(top + y, left + x) = g(y / zoom, x / zoom);
    };

    for (std::size_t r = 0; r < rows.size(); ++r) {
        const advaug::tensor<float, 2> clean = to_unit(data.test_images, rows[r]);
        place(clean, r, 0);
        for (std::size_t c = 0; c < columns.size(); ++c) {
            advaug::tensor<float, 2> img = clean;
            // One seed per row, shared by its corruptions; any seed gives a valid sample.
            advaug::corrupt(img, columns[c], opt.severity, advaug::corruption_seed(opt.seed, r));
            place(img, r, c + 1);
        }
    }

    advaug::io::write_png(opt.output, sheet);
    std::printf(
        "wrote %s: %zu x %zu pixels, %zu images x (clean + %zu corruptions) at severity %d\n",
        opt.output.c_str(), sheet_w, sheet_h, rows.size(), columns.size(), opt.severity);
    if (opt.stats) print_stats(data.test_images, opt.seed);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "corruption_sheet: %s\n", e.what());
    return 1;
}
