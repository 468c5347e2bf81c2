// Tests for advaug/io/npz.hpp: .npz round trips, model weights, numpy interoperability, and
// refusal of malformed, truncated, corrupted or ill-fitting files.
#include "support/temp_dir.hpp"
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "advaug/io/npz.hpp"
#include "support/models.hpp"
#include "support/skip.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_npz {

using namespace advaug;
using io::npz_archive;
namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

namespace {

using advaug::testing::temp_dir;

/// The message of the io_error `f` throws; a FAIL if it throws something else or nothing.
template <class F>
std::string io_error_of(F&& f) {
    try {
        f();
    } catch (const io_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("expected io_error, got another exception: ", e.what());
        return {};
    }
    FAIL("expected io_error, nothing was thrown");
    return {};
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

/// Element i of a test array: distinct, and for floating point including the awkward values.
template <class T>
T value_at(std::size_t i) {
    if constexpr (std::is_floating_point_v<T>) {
        using L = std::numeric_limits<T>;
        const T special[] = {T(-0.0),         L::infinity(), -L::infinity(), L::quiet_NaN(),
                             L::denorm_min(), L::max(),      L::lowest()};
        if (i < std::size(special)) return special[i];
        return static_cast<T>(0.37 * static_cast<double>(i) - 5.0);
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
        if (i == 3) return std::numeric_limits<std::int64_t>::min();
        // negative for odd i; unsigned arithmetic, then the (C++20: modular) conversion
        return static_cast<std::int64_t>((i * 0x0123456789ABCDULL) ^ (i % 2 ? ~0ULL : 0ULL));
    } else {
        return static_cast<T>(i * 37 + 11);
    }
}

template <class T, std::size_t N>
xt::xtensor<T, N> make_tensor(const std::array<std::size_t, N>& shape, std::size_t offset) {
    auto t = xt::xtensor<T, N>::from_shape(shape);
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = value_at<T>(i + offset);
    return t;
}

/// Bitwise equality, so that NaN equals itself.
template <class T, std::size_t N>
bool same_bits(const xt::xtensor<T, N>& a, const xt::xtensor<T, N>& b) {
    return a.shape() == b.shape() &&
           (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same_archive(const npz_archive& a, const npz_archive& b) {
    if (a.names() != b.names()) return false;
    for (const auto& name : a.names()) {
        const auto& x = a.at(name);
        const auto& y = b.at(name);
        if (x.dtype != y.dtype || x.shape != y.shape || x.data != y.data) return false;
    }
    return true;
}

/// A zip archive of the given members, written by libzip directly: for members that
/// npz_archive would never write.
bytes make_zip(const std::vector<std::pair<std::string, std::string>>& members,
               bool deflate = false) {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
    REQUIRE(buffer != nullptr);
    zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
    REQUIRE(archive != nullptr);
    zip_source_keep(buffer);
    for (const auto& [name, content] : members) {
        zip_source_t* s = zip_source_buffer(archive, content.data(), content.size(), 0);
        REQUIRE(s != nullptr);
        const zip_int64_t index = zip_file_add(archive, name.c_str(), s, 0);
        REQUIRE(index >= 0);
        REQUIRE(zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                                         deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) == 0);
    }
    REQUIRE(zip_close(archive) == 0);
    REQUIRE(zip_source_open(buffer) == 0);
    REQUIRE(zip_source_seek(buffer, 0, SEEK_END) == 0);
    const zip_int64_t size = zip_source_tell(buffer);
    REQUIRE(zip_source_seek(buffer, 0, SEEK_SET) == 0);
    bytes out(static_cast<std::size_t>(size));
    REQUIRE(zip_source_read(buffer, out.data(), out.size()) == size);
    zip_source_close(buffer);
    zip_source_free(buffer);
    zip_error_fini(&error);
    return out;
}

/// An .npy member with the given header dict (padded like numpy) and data bytes.
std::string npy(std::string dict, const std::string& data, int major = 1) {
    const std::size_t prefix = major == 1 ? 10 : 12;
    dict.append(63 - (prefix + dict.size()) % 64, ' ');
    dict += '\n';
    std::string out("\x93NUMPY", 6);
    out += static_cast<char>(major);
    out += '\0';
    out += static_cast<char>(dict.size() & 0xff);
    out += static_cast<char>((dict.size() >> 8) & 0xff);
    if (major != 1) out += std::string(2, '\0');
    return out + dict + data;
}

std::string float_bytes(std::initializer_list<float> values) {
    std::string out(values.size() * sizeof(float), '\0');
    std::memcpy(out.data(), values.begin(), out.size());
    return out;
}

void write_bytes(const std::string& path, const bytes& content) {
    io::write_file_atomically(path, content);
}

/// A small archive with one array of each dtype.
npz_archive sample_archive() {
    npz_archive a;
    a.add("w", make_tensor<float, 2>({3, 4}, 0));
    a.add("b", make_tensor<double, 1>({5}, 0));
    a.add("idx", make_tensor<std::int64_t, 3>({2, 1, 3}, 1));
    a.add("img", make_tensor<std::uint8_t, 2>({2, 5}, 2));
    a.add_string("__advaug__.architecture", "mlp 4-3");
    return a;
}

bool have_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

/// Runs a Python script with numpy; true if it exits with 0.
bool run_python(const temp_dir& dir, const std::string& script) {
    const std::string path = dir.file("check.py");
    std::ofstream(path) << script;
    return std::system(("/usr/bin/python3 " + path).c_str()) == 0;
}

/// A Python float literal holding exactly `v`.
template <class T>
std::string py(T v) {
    std::ostringstream out;
    out.precision(17);
    out << static_cast<double>(v);
    return out.str();
}

template <class T>
std::string py_list(const std::vector<T>& values) {
    std::string out = "[";
    for (const auto& v : values)
        out += (std::is_floating_point_v<T> ? py(v) : std::to_string(v)) + ", ";
    return out + "]";
}

}  // namespace

// --- round trips -------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("npz arrays of ranks 0-4 come back bit for bit", T, float, double, std::int64_t,
                   std::uint8_t) {
    temp_dir dir;
    const auto r0 = make_tensor<T, 0>({}, 3);
    const auto r1 = make_tensor<T, 1>({9}, 0);
    const auto r2 = make_tensor<T, 2>({3, 5}, 1);
    const auto r3 = make_tensor<T, 3>({2, 3, 4}, 2);
    const auto r4 = make_tensor<T, 4>({2, 1, 3, 2}, 5);
    const auto empty = make_tensor<T, 2>({0, 4}, 0);
    npz_archive out;
    out.add("r4", r4);
    out.add("r1", r1);
    out.add("nested/r2", r2);
    out.add("r3", r3);
    out.add("r0", r0);
    out.add("empty", empty);
    const std::string path = dir.file("arrays.npz");
    out.save(path);

    const npz_archive in = npz_archive::load(path);
    CHECK(in.names() == std::vector<std::string>{"r4", "r1", "nested/r2", "r3", "r0", "empty"});
    CHECK(in.source() == path);
    CHECK(in.at("r3").dtype == io::npy_dtype<T>());
    CHECK(in.at("r3").shape == std::vector<std::size_t>{2, 3, 4});
    CHECK(same_bits(in.get_tensor<T, 0>("r0"), r0));
    CHECK(same_bits(in.get_tensor<T, 1>("r1"), r1));
    CHECK(same_bits(in.get_tensor<T, 2>("nested/r2"), r2));
    CHECK(same_bits(in.get_tensor<T, 3>("r3"), r3));
    CHECK(same_bits(in.get_tensor<T, 4>("r4"), r4));
    CHECK(same_bits(in.get_tensor<T, 2>("empty"), empty));
    const std::vector<T> flat = in.get<T>("nested/r2", {3, 5});
    CHECK(std::memcmp(flat.data(), r2.data(), flat.size() * sizeof(T)) == 0);

    // Equal archives are equal files (fixed member times), and a reloaded archive re-saves
    // to the same bytes.
    CHECK(out.to_bytes() == io::read_file(path));
    CHECK(in.to_bytes() == io::read_file(path));
}

TEST_CASE("npz_archive stores strings, raw arrays and the empty archive") {
    temp_dir dir;
    npz_archive a;
    a.add_string("text", "héllo\nworld");
    a.add_string("empty", "");
    a.add(io::npz_array{"i32", "<i4", {2}, {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}});
    a.add(io::npz_array{"b", "=u1", {3}, {1, 2, 3}});  // normalized to '|u1'
    a.add(std::string("v"), std::vector<double>{1.5, -2.5}, {2, 1});
    a.save(dir.file("s.npz"));
    const auto b = npz_archive::load(dir.file("s.npz"));
    CHECK(b.get_string("text") == "héllo\nworld");
    CHECK(b.get_string("empty").empty());
    CHECK(b.at("i32").dtype == "<i4");
    CHECK(b.at("i32").data == bytes{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff});
    CHECK(b.at("b").dtype == "|u1");
    CHECK(b.get<double>("v", {2, 1}) == std::vector<double>{1.5, -2.5});

    npz_archive none;
    none.save(dir.file("none.npz"));
    const auto back = npz_archive::load(dir.file("none.npz"));
    CHECK(back.size() == 0);
    CHECK(back.names().empty());
}

TEST_CASE("npz_archive refuses bad arguments and names what get() finds wrong") {
    npz_archive a = sample_archive();
    CHECK_THROWS_WITH_AS(a.add("w", make_tensor<float, 1>({2}, 0)),
                         "npz_archive::add(): array 'w' is already in the archive",
                         std::invalid_argument);
    CHECK_THROWS_AS(a.add("", make_tensor<float, 1>({2}, 0)), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.add("x", std::vector<float>{1, 2, 3}, {2, 2}),
                         "npz_archive::add(): array 'x' has 3 values, shape [2, 2] needs 4",
                         std::invalid_argument);
    CHECK_THROWS_AS(a.add(io::npz_array{"y", "<U4", {1}, bytes(16)}), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.add(io::npz_array{"y", ">f4", {1}, bytes(4)}),
                         "npz_archive::add(): array 'y' has unsupported dtype '>f4' (big-endian)",
                         std::invalid_argument);
    CHECK_THROWS_AS(a.add(io::npz_array{"y", "<f4", {2}, bytes(4)}), std::invalid_argument);
    CHECK(a.size() == 5);

    const auto in = npz_archive::from_bytes(a.to_bytes(), "m.npz");
    CHECK(io_error_of([&] {
              in.get<double>("w", {3, 4});
          }) == "npz_archive::get(): 'm.npz' array 'w' has dtype '<f4', expected '<f8'");
    CHECK(io_error_of([&] {
              in.get<float>("w", {4, 3});
          }) == "npz_archive::get(): 'm.npz' array 'w' has shape [3, 4], expected [4, 3]");
    CHECK(io_error_of([&] { in.get<float>("nope", {1}); }) ==
          "npz_archive::get(): 'm.npz' has no array 'nope'");
    CHECK(has(io_error_of([&] { in.get_tensor<float, 3>("w"); }),
              "has shape [3, 4] of rank 2, expected rank 3"));
    CHECK(has(io_error_of([&] { in.get_string("w"); }), "expected a 1-D '|u1' array"));
    CHECK(in.get_string("__advaug__.architecture") == "mlp 4-3");
}

// --- model parameters --------------------------------------------------------------------------

TEST_CASE_TEMPLATE("mlp parameters round trip through an .npz file", T, float, double) {
    temp_dir dir;
    mlp<T> trained({6, 5, 4, 3}, 1);
    mlp<T> fresh({6, 5, 4, 3}, 2);
    const auto x = testing::uniform_batch<T>(4, 6, 9);
    typename mlp<T>::cache_type cache;
    tensor<T, 2> expected, before, after;
    trained.forward(x, cache, expected);
    fresh.forward(x, cache, before);
    REQUIRE(testing::max_abs_diff(expected, before) > 0);

    const std::string path = dir.file("mlp.npz");
    const std::map<std::string, std::string> meta{{"architecture", "mlp 6-5-4-3"}, {"epoch", "7"}};
    io::save_parameters(path, trained.parameters(), meta);
    io::load_parameters(path, fresh.parameters());
    fresh.forward(x, cache, after);
    CHECK(testing::max_abs_diff(expected, after) == 0);
    CHECK(io::load_metadata(path) == meta);

    // One array per parameter, named and shaped like it, then the metadata.
    std::vector<std::string> names;
    for (const auto& p : trained.parameters()) names.push_back(p.name);
    REQUIRE(names.size() == 6);
    names.insert(names.end(), {"__advaug__.architecture", "__advaug__.epoch"});
    const auto archive = npz_archive::load(path);
    CHECK(archive.names() == names);
    for (const auto& p : trained.parameters()) CHECK(archive.at(p.name).shape == p.shape);
    CHECK(archive.at("0.weight").shape == std::vector<std::size_t>{5, 6});
}

TEST_CASE("load_parameters refuses a file that does not fit the model and changes nothing") {
    temp_dir dir;
    mlp<float> net({6, 5, 3}, 1);
    mlp<float> other({6, 5, 3}, 2);  // different values, so a partial copy would show
    const auto before = testing::snapshot(net);
    const std::string path = dir.file("bad.npz");

    // Everything of `other` except `skip`, then `extra` last: a loader that copied as it
    // went would already have overwritten net's first arrays when it hits the problem.
    auto write = [&](const std::string& skip, const std::function<void(npz_archive&)>& extra) {
        npz_archive a;
        for (auto& p : other.parameters()) {
            if (p.name != skip) a.add(p.name, std::span<const float>(p.value), p.shape);
        }
        if (extra) extra(a);
        a.save(path);
    };
    auto refusal = [&] {
        return io_error_of([&] { io::load_parameters(path, net.parameters()); });
    };
    const std::string where = "load_parameters(): '" + path + "' ";

    // The second dense layer's parameters (their names depend on the model's numbering).
    const auto views0 = net.parameters();
    REQUIRE(views0.size() == 4);
    const std::string w1 = views0[2].name, b1 = views0[3].name;
    REQUIRE(views0[2].shape == std::vector<std::size_t>{3, 5});

    write(b1, {});
    CHECK(refusal() == where + "is missing array '" + b1 + "'");
    CHECK(testing::snapshot(net) == before);

    write("", [](npz_archive& a) { a.add("foo", std::vector<float>{1}, {1}); });
    CHECK(refusal() == where + "has an unexpected array 'foo'");
    CHECK(testing::snapshot(net) == before);

    write(w1, [&](npz_archive& a) { a.add(w1, std::vector<float>(3 * 7), {3, 7}); });
    CHECK(refusal() == where + "array '" + w1 + "' has shape [3, 7], the model expects [3, 5]");
    CHECK(testing::snapshot(net) == before);

    write(b1, [&](npz_archive& a) { a.add(b1, std::vector<double>(3), {3}); });
    CHECK(refusal() == where + "array '" + b1 + "' has dtype '<f8', the model expects '<f4'");
    CHECK(testing::snapshot(net) == before);

    // A damaged file: the last member's data is cut short.
    write("", {});
    bytes damaged = io::read_file(path);
    damaged.resize(damaged.size() - 40);
    write_bytes(path, damaged);
    CHECK(has(refusal(), where));
    CHECK(testing::snapshot(net) == before);

    // Metadata is not an unexpected array.
    write("", [](npz_archive& a) { a.add_string("__advaug__.note", "hi"); });
    io::load_parameters(path, net.parameters());
    CHECK(testing::snapshot(net) != before);
    CHECK(io::load_metadata(path) == std::map<std::string, std::string>{{"note", "hi"}});

    // Views that contradict themselves, and names save_parameters cannot store.
    auto views = net.parameters();
    views[0].shape = {5, 7};
    CHECK_THROWS_AS(io::load_parameters(path, views), std::invalid_argument);
    views = net.parameters();
    views[1].name = views[0].name;
    CHECK_THROWS_AS(io::save_parameters(dir.file("x.npz"), views), std::invalid_argument);
    views[1].name = "__advaug__.bias";
    CHECK_THROWS_AS(io::save_parameters(dir.file("x.npz"), views), std::invalid_argument);
    CHECK_FALSE(fs::exists(dir.file("x.npz")));
}

// --- numpy interoperability --------------------------------------------------------------------

TEST_CASE("numpy reads advaug's .npz files and advaug reads numpy's") {
    if (!have_numpy()) {
        advaug::testing::skip("/usr/bin/python3 has no numpy (apt-get install python3-numpy)");
        return;
    }
    temp_dir dir;
    const npz_archive a = sample_archive();
    a.save(dir.file("ours.npz"));
    mlp<float> net({4, 3, 2}, 5);
    io::save_parameters(dir.file("mlp.npz"), net.parameters(), {{"architecture", "mlp 4-3-2"}});
    const auto params = net.parameters();

    // Finite values only: the comparison in Python is plain ==.
    npz_archive finite;
    finite.add("w", make_tensor<float, 2>({3, 4}, 7));
    finite.add("b", make_tensor<double, 1>({5}, 7));
    finite.add("idx", make_tensor<std::int64_t, 3>({2, 1, 3}, 1));
    finite.add("img", make_tensor<std::uint8_t, 2>({2, 5}, 2));
    finite.save(dir.file("finite.npz"));

    std::string script = "import numpy as np, sys\n";
    script += "d = np.load('" + dir.file("finite.npz") + "')\n";
    script += "assert sorted(d.files) == ['b', 'idx', 'img', 'w'], d.files\n";
    script += "assert d['w'].dtype == np.float32 and d['w'].shape == (3, 4)\n";
    script += "assert d['b'].dtype == np.float64 and d['b'].shape == (5,)\n";
    script += "assert d['idx'].dtype == np.int64 and d['idx'].shape == (2, 1, 3)\n";
    script += "assert d['img'].dtype == np.uint8 and d['img'].shape == (2, 5)\n";
    for (const char* name : {"w", "b", "idx", "img"}) {
        const auto& arr = finite.at(name);
        std::string values;
        if (arr.dtype == "<f4") values = py_list(finite.get<float>(name, arr.shape));
        if (arr.dtype == "<f8") values = py_list(finite.get<double>(name, arr.shape));
        if (arr.dtype == "<i8") values = py_list(finite.get<std::int64_t>(name, arr.shape));
        if (arr.dtype == "|u1") values = py_list(finite.get<std::uint8_t>(name, arr.shape));
        script += std::string("assert d['") + name + "'].ravel().tolist() == " + values + ", '" +
                  name + "'\n";
    }
    script += "m = np.load('" + dir.file("mlp.npz") + "')\n";
    std::string files = "[";
    for (const auto& p : params) files += "'" + p.name + "', ";
    script += "assert m.files == " + files + "'__advaug__.architecture'], m.files\n";
    script +=
        "assert m['0.weight'].shape == (3, 4) and m['" + params[3].name + "'].shape == (2,)\n";
    script += "assert m['0.weight'].ravel().tolist() == " +
              py_list(std::vector<float>(params[0].value.begin(), params[0].value.end())) + "\n";
    script += "assert bytes(m['__advaug__.architecture']).decode() == 'mlp 4-3-2'\n";
    script += "o = np.load('" + dir.file("ours.npz") + "')\n";
    script += "assert np.isnan(o['w'].ravel()[3]) and np.isinf(o['w'].ravel()[1])\n";
    // numpy's own files, for the other direction
    script += "x = np.arange(12, dtype=np.float32).reshape(3, 4) / 4\n";
    script += "np.savez('" + dir.file("np.npz") +
              "', x=x, y=np.array([1, -2, 3], dtype=np.int64), z=np.array(2.5), i=np.array([7, 8], "
              "dtype=np.int32))\n";
    script += "np.savez_compressed('" + dir.file("npc.npz") + "', x=x, big=np.zeros((64, 64)))\n";
    script += "np.savez('" + dir.file("fortran.npz") + "', f=np.asfortranarray(x))\n";
    script += "np.savez('" + dir.file("bigendian.npz") + "', e=x.astype('>f4'))\n";
    script += "np.savez('" + dir.file("strings.npz") + "', s=np.array(['ab', 'c']))\n";
    REQUIRE(run_python(dir, script));

    std::vector<float> x(12);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) / 4;
    const auto np = npz_archive::load(dir.file("np.npz"));
    CHECK(np.get<float>("x", {3, 4}) == x);
    CHECK(np.get<std::int64_t>("y", {3}) == std::vector<std::int64_t>{1, -2, 3});
    CHECK(np.get<double>("z", {}) == std::vector<double>{2.5});
    CHECK(np.at("i").dtype == "<i4");
    const auto npc = npz_archive::load(dir.file("npc.npz"));
    CHECK(npc.get<float>("x", {3, 4}) == x);
    CHECK(npc.get<double>("big", {64, 64}) == std::vector<double>(64 * 64, 0.0));

    CHECK(has(io_error_of([&] { npz_archive::load(dir.file("fortran.npz")); }),
              "member 'f.npy' is stored in Fortran order"));
    CHECK(has(io_error_of([&] { npz_archive::load(dir.file("bigendian.npz")); }),
              "member 'e.npy' has unsupported dtype '>f4' (big-endian)"));
    CHECK(
        has(io_error_of([&] { npz_archive::load(dir.file("strings.npz")); }),
            "member 's.npy' has unsupported dtype '<U2' (not bool, int, uint, float or complex)"));
}

// --- malformed, truncated and corrupted files
// -----------------------------------------------------

TEST_CASE("malformed .npy members are refused with a precise message") {
    const std::string two = float_bytes({1, 2});
    auto refusal = [](const std::string& member, const std::string& content) {
        const bytes zip = make_zip({{member, content}});
        return io_error_of([&] { npz_archive::from_bytes(zip, "m.npz"); });
    };
    const std::string at = "npz_archive::load(): 'm.npz' member 'a.npy' ";
    const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";

    // Variants numpy may write are accepted: other key order, double quotes, format 2.0 and 3.0.
    for (const auto& content :
         {npy(ok_dict, two), npy("{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}", two),
          npy("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, )}", two),
          npy(ok_dict, two, 2), npy(ok_dict, two, 3)}) {
        const auto a = npz_archive::from_bytes(make_zip({{"a.npy", content}}), "m.npz");
        CHECK(a.get<float>("a", {2}) == std::vector<float>{1, 2});
    }

    CHECK(refusal("a.txt", npy(ok_dict, two)) ==
          "npz_archive::load(): 'm.npz' member 'a.txt' is not a .npy file (its name does not end "
          "in '.npy')");
    CHECK(refusal("a.npy", "\x93NUMP") == at + "has 5 bytes, too few for a .npy header");
    CHECK(refusal("a.npy", "PK" + npy(ok_dict, two).substr(2)) ==
          at + "is not a .npy file (no \\x93NUMPY magic)");
    std::string v9 = npy(ok_dict, two);
    v9[6] = 9;
    CHECK(refusal("a.npy", v9) == at + "has unsupported .npy format version 9.0");
    std::string long_header = npy(ok_dict, two);
    long_header[9] = 0x7f;
    CHECK(refusal("a.npy", long_header) ==
          at + "has a .npy header of 32630 bytes, but only 126 follow");
    std::string no_newline = npy(ok_dict, two);
    no_newline[no_newline.size() - two.size() - 1] = ' ';
    CHECK(refusal("a.npy", no_newline) == at + "has a .npy header that does not end in a newline");
    CHECK(
        refusal("a.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", two)) ==
        at + "is stored in Fortran order (fortran_order: True); only C order is supported");
    CHECK(refusal("a.npy", npy("{'descr': '<f4', 'fortran_order': False}", two)) ==
          at + "header lacks the key 'shape'");
    CHECK(refusal("a.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'foo': 1}",
                               two)) == at + "header has an unexpected key 'foo'");
    CHECK(refusal("a.npy",
                  npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
                      two)) == at + "header has the key 'descr' twice");
    CHECK(refusal("a.npy",
                  npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", two)) ==
          at + "has a structured or non-numeric dtype, which is not supported");
    CHECK(refusal("a.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}", two)) ==
          at + "has unsupported dtype '>f4' (big-endian)");
    CHECK(refusal("a.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", two)) ==
          at + "header has a 'shape' that is not a tuple of integers");
    CHECK(refusal("a.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", two)) ==
          at + "header has a 'shape' that is not a tuple of integers");
    CHECK(refusal("a.npy", npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", two)) ==
          at + "header has a 'fortran_order' that is neither True nor False");
    CHECK(refusal("a.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", two)) ==
          at + "header has trailing characters after its dict");
    // Absurd shapes: a dimension that does not fit, a size that overflows, a size far beyond
    // the data (nothing is allocated for it).
    CHECK(
        refusal("a.npy",
                npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
                    two)) == at + "header has a 'shape' with a dimension that overflows");
    CHECK(refusal("a.npy",
                  npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
                      two)) == at +
                                   "has shape [4294967296, 4294967296] of 4-byte items is too big: "
                                   "its non-zero dimensions hold more than 2^63 - 1 bytes");
    CHECK(
        refusal("a.npy",
                npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,)}", two)) ==
        at + "has 8 data bytes, but shape [1000000000000] of dtype '<f8' needs 8000000000000");
    CHECK(refusal("a.npy", npy(ok_dict, two + "x")) ==
          at + "has 9 data bytes, but shape [2] of dtype '<f4' needs 8");
    CHECK(refusal("a.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3)}", two)) ==
          at + "has 8 data bytes, but shape [0, 3] of dtype '<f4' needs 0");

    CHECK(io_error_of([] { npz_archive::from_bytes(bytes{}, "m.npz"); }) ==
          "npz_archive::load(): 'm.npz' has 0 bytes, too few for a zip archive");
    CHECK(has(io_error_of([] { npz_archive::from_bytes(bytes(100, 'x'), "m.npz"); }),
              "npz_archive::load(): 'm.npz' is not a valid zip archive: "));
    CHECK(has(io_error_of([] { npz_archive::load("/nonexistent/advaug/m.npz"); }),
              "'/nonexistent/advaug/m.npz'"));
}

TEST_CASE("a shape with a zero dimension is still refused when its other dimensions are too big") {
    // Found by fuzz/fuzz_npz.cpp: the shape holds 0 bytes, so its size did not overflow, but
    // xtensor computes the strides of the non-zero dimensions in signed arithmetic, which
    // overflowed (UBSan) when the array was written or fetched as a tensor. numpy refuses such
    // a shape ("array is too big"); so does advaug now, when reading and when adding.
    const std::string crash(
        "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': "
        "(1,2,0,05,2,2,0,6112101,2,0,116162411213001,2,7,116241,1, 1), }    \n",
        128);
    const bytes zip = make_zip({{"a.npy", crash}});
    CHECK(io_error_of([&] { npz_archive::from_bytes(zip, "m.npz"); }) ==
          "npz_archive::load(): 'm.npz' member 'a.npy' has shape [1, 2, 0, 5, 2, 2, 0, 6112101, "
          "2, 0, 116162411213001, 2, 7, 116241, 1, 1] of 8-byte items is too big: its non-zero "
          "dimensions hold more than 2^63 - 1 bytes");

    npz_archive a;
    const std::vector<std::size_t> huge = {0, std::size_t(1) << 62, 4};
    CHECK_THROWS_WITH_AS(a.add<float>("x", std::vector<float>{}, huge),
                         "npz_archive::add(): array 'x' has shape [0, 4611686018427387904, 4] of "
                         "4-byte items is too big: its non-zero dimensions hold more than 2^63 - "
                         "1 bytes",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.add(io::npz_array{"y", "|u1", huge, {}}),
                         "npz_archive::add(): array 'y' has shape [0, 4611686018427387904, 4] of "
                         "1-byte items is too big: its non-zero dimensions hold more than 2^63 - "
                         "1 bytes",
                         std::invalid_argument);

    // Empty arrays whose other dimensions fit are fine, also as tensors and through a file.
    a.add<float>("e", std::vector<float>{}, {0, std::size_t(1) << 40});
    const npz_archive back = npz_archive::from_bytes(a.to_bytes());
    const auto e = back.get_tensor<float, 2>("e");
    CHECK(e.shape(0) == 0);
    CHECK(e.shape(1) == (std::size_t(1) << 40));
}

TEST_CASE("truncated .npz files are refused at every length") {
    temp_dir dir;
    const bytes stored = sample_archive().to_bytes();
    std::vector<std::pair<std::string, std::string>> members;
    for (const auto& name : {"a", "b"})
        members.emplace_back(name + std::string(".npy"),
                             npy("{'descr': '<f8', 'fortran_order': False, 'shape': (40,)}",
                                 std::string(320, '\x01')));
    const bytes deflated = make_zip(members, /*deflate=*/true);
    for (const bytes* file : {&stored, &deflated}) {
        REQUIRE(npz_archive::from_bytes(*file).size() > 0);
        for (std::size_t cut = 0; cut < file->size(); ++cut) {
            CHECK_THROWS_AS(npz_archive::from_bytes(std::span(file->data(), cut)), io_error);
        }
    }
    // Through the file system too.
    for (std::size_t cut :
         {std::size_t(0), std::size_t(21), stored.size() / 2, stored.size() - 1}) {
        const std::string path = dir.file("cut.npz");
        write_bytes(path, bytes(stored.begin(), stored.begin() + static_cast<std::ptrdiff_t>(cut)));
        CHECK(has(io_error_of([&] { npz_archive::load(path); }),
                  "npz_archive::load(): '" + path + "'"));
    }
}

TEST_CASE("corrupted .npz files are refused, or read back exactly as written") {
    const npz_archive original = sample_archive();
    const bytes file = original.to_bytes();
    enum { rejected, unchanged, changed };
    auto outcome = [&](const bytes& damaged) {
        try {
            return same_archive(npz_archive::from_bytes(damaged), original) ? unchanged : changed;
        } catch (const io_error&) {
            return rejected;
        }  // any other exception escapes and fails the test
    };

    // Where each member's .npy bytes lie (stored uncompressed, so verbatim): a flip there
    // must be caught, by the CRC if nothing else.
    std::vector<bool> in_member(file.size(), false);
    for (const auto& name : original.names()) {
        const std::string encoded = advaug::detail::npz::encode_npy(original.at(name));
        const bytes content(encoded.begin(), encoded.end());
        const auto at = std::search(file.begin(), file.end(), content.begin(), content.end());
        REQUIRE(at != file.end());
        std::fill_n(in_member.begin() + (at - file.begin()), content.size(), true);
    }

    std::size_t counts[3] = {0, 0, 0};
    for (std::size_t i = 0; i < file.size(); ++i) {
        for (std::uint8_t mask : {0x01, 0x80, 0xff}) {
            bytes damaged = file;
            damaged[i] ^= mask;
            const auto result = outcome(damaged);
            ++counts[result];
            CHECK_MESSAGE(result != changed, "byte ", i, " ^ ", int(mask),
                          " was read as other content");
            if (in_member[i])
                CHECK_MESSAGE(result == rejected, "byte ", i, " ^ ", int(mask), " went unnoticed");
        }
    }
    MESSAGE("single-byte flips: ", counts[rejected], " refused, ", counts[unchanged],
            " harmless (outside the data), of ", 3 * file.size());
    CHECK(counts[rejected] > 2 * file.size());

    // Random damage to several bytes at once, including length fields and directories.
    std::mt19937 gen(12345);
    for (int trial = 0; trial < 3000; ++trial) {
        bytes damaged = file;
        const int changes = 1 + trial % 8;
        for (int c = 0; c < changes; ++c) {
            damaged[gen() % damaged.size()] = static_cast<std::uint8_t>(gen());
        }
        CHECK(outcome(damaged) != changed);
    }
}

// --- writing -----------------------------------------------------------------------------------

TEST_CASE("a failed save is an io_error and leaves the existing file intact") {
    temp_dir dir;
    const npz_archive a = sample_archive();
    CHECK(has(io_error_of([&] { a.save(dir.file("no/such/dir/m.npz")); }),
              dir.file("no/such/dir/m.npz")));

    const std::string path = dir.file("m.npz");
    a.save(path);
    const bytes old = io::read_file(path);

    // A write that fails half-way: the file size limit is below the new archive's size.
    npz_archive big;
    big.add("x", std::vector<double>(20000, 1.0), {20000});
    struct rlimit saved {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    struct rlimit low = saved;
    low.rlim_cur = 4096;
    auto* previous = ::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &low) == 0);
    std::string message;
    try {
        big.save(path);
    } catch (const io_error& e) {
        message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, previous);
    CHECK(has(message, "'" + path + "'"));
    CHECK(io::read_file(path) == old);
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path)) ++files;
    CHECK(files == 1);  // no temporary file left behind

    // A refused call writes nothing either.
    mlp<float> net({3, 2}, 1);
    auto views = net.parameters();
    views[1].name = views[0].name;
    CHECK_THROWS_AS(io::save_parameters(path, views), std::invalid_argument);
    CHECK(io::read_file(path) == old);
}

}  // namespace test_npz
