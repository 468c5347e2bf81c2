// Tests for advaug/io/npy.hpp: write_npy keeps every bit (numpy, through /usr/bin/python3,
// reads the file back where it is installed) and read_npy returns it and refuses a damaged file.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "advaug/io/npy.hpp"
#include "support/skip.hpp"
#include "support/temp_dir.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_npy {

using advaug::tensor;
using advaug::testing::temp_dir;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool have_program(const std::string& check) {
    return std::system((check + " > /dev/null 2>&1").c_str()) == 0;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

}  // namespace

TEST_CASE("write_npy keeps every bit, numpy and read_npy read it back") {
    temp_dir dir;
    tensor<float, 3> a = tensor<float, 3>::from_shape({2, 3, 4});
    for (std::size_t i = 0; i < a.size(); ++i) {
        // Perturbations far below PNG's 1/255 step must survive.
        a.data()[i] = 0.5f + static_cast<float>(i) * 1e-5f - (i % 2 ? 3e-7f : 0.0f);
    }
    const std::string path = dir.file("adv.npy");
    advaug::io::write_npy(path, a);

    // Our own reading of the format: 10-byte preamble, header, then the raw floats.
    const std::string bytes = slurp(path);
    REQUIRE(bytes.size() > a.size() * sizeof(float));
    CHECK(bytes.compare(0, 6, "\x93NUMPY") == 0);
    const std::string payload = bytes.substr(bytes.size() - a.size() * sizeof(float));
    CHECK(std::memcmp(payload.data(), a.data(), payload.size()) == 0);
    CHECK(bytes.find("'descr': '<f4'") != std::string::npos);
    CHECK(bytes.find("'shape': (2, 3, 4)") != std::string::npos);

    // read_npy gives back the same dtype, shape and bytes; a truncated file is refused.
    const advaug::io::npz_array back = advaug::io::read_npy(path);
    CHECK(back.dtype == "<f4");
    CHECK(back.shape == std::vector<std::size_t>{2, 3, 4});
    REQUIRE(back.data.size() == a.size() * sizeof(float));
    CHECK(std::memcmp(back.data.data(), a.data(), back.data.size()) == 0);
    {
        std::ofstream cut(dir.file("cut.npy"), std::ios::binary);
        cut.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 1));
    }
    CHECK_THROWS_WITH_AS(advaug::io::read_npy(dir.file("cut.npy")),
                         doctest::Contains("read_npy(): '"), advaug::io_error);

    const bool numpy = have_program("/usr/bin/python3 -c 'import numpy'");
    if (!numpy) {
        advaug::testing::skip(
            "/usr/bin/python3 with numpy not found: the numpy round trip did not run");
        return;
    }
    const std::string dump = dir.file("dump.txt");
    const std::string script =
        "import numpy as np, sys; a = np.load(sys.argv[1]); "
        "open(sys.argv[2], 'w').write(str(a.dtype) + ' ' + ' '.join(map(str, a.shape)) + '\\n' + "
        "'\\n'.join(float(v).hex() for v in a.ravel()))";
    REQUIRE(std::system(
                ("/usr/bin/python3 -c \"" + script + "\" '" + path + "' '" + dump + "'").c_str()) ==
            0);
    const auto rows = lines(slurp(dump));
    REQUIRE(rows.size() == 1 + a.size());
    CHECK(rows[0] == "float32 2 3 4");
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double v = std::strtod(rows[i + 1].c_str(), nullptr);  // hex float: exact
        CHECK(static_cast<float>(v) == a.data()[i]);
        CHECK(v == static_cast<double>(a.data()[i]));
    }
}

}  // namespace test_npy
