// Fuzz target: the .npz/.npy loader (include/advaug/io/npz.hpp, include/advaug/io/model_file.hpp).
//
// Each input is read three ways:
//   - as a bare .npy member by the header parser (detail::npy::parse_npy in io/npy.hpp); an accepted member
//     is put into an archive, fetched with every typed getter, written with to_bytes() and
//     read back, and must come back equal (zip CRCs would stop most mutations of a member
//     inside an archive, so this is where the .npy header gets fuzzed);
//   - as an .npz archive by npz_archive::from_bytes; every array is then fetched with the
//     typed getters, and the archive must survive to_bytes()/from_bytes() unchanged;
//   - from a scratch file by load_parameters, load_metadata and load_model into a small MLP,
//     float and double (only when from_bytes accepted it: they share its parser, and on a
//     refusal they refuse too).
#include <advaug/io/model_file.hpp>
#include <advaug/io/npz.hpp>
#include <advaug/models/mlp.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fuzz_common.hpp"

namespace {

using namespace advaug_fuzz;
namespace io = advaug::io;

bool same(const io::npz_array& a, const io::npz_array& b) {
    return a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.data == b.data;
}

void check_round_trip(const io::npz_archive& in) {
    std::vector<std::uint8_t> bytes;
    must_succeed("npz_archive::to_bytes", [&] { bytes = in.to_bytes(); });
    io::npz_archive back;
    must_succeed("reading back to_bytes()", [&] { back = io::npz_archive::from_bytes(bytes); });
    require(back.names() == in.names(), "to_bytes()/from_bytes() changed the names");
    for (const auto& name : in.names()) {
        require(same(back.at(name), in.at(name)), "to_bytes()/from_bytes() changed '" + name + "'");
    }
}

/// Every getter on every array: a value of the right size, or a refusal naming the getter.
void fetch_all(const io::npz_archive& archive) {
    for (const auto& name : archive.names()) {
        const io::npz_array& a = archive.at(name);
        refused_cleanly(
            [&] {
                const auto v = archive.get<float>(name, a.shape);
                require(v.size() * sizeof(float) == a.data.size(), "get<float> lost elements");
            },
            {"npz_archive::get("});
        refused_cleanly([&] { (void)archive.get<std::int64_t>(name, {1}); }, {"npz_archive::get("});
        refused_cleanly([&] { (void)archive.get_tensor<double, 1>(name); },
                        {"npz_archive::get_tensor("});
        refused_cleanly(
            [&] {
                const auto t = archive.get_tensor<float, 2>(name);
                require(t.size() * sizeof(float) == a.data.size(), "get_tensor lost elements");
            },
            {"npz_archive::get_tensor("});
        refused_cleanly([&] { (void)archive.get_tensor<std::uint8_t, 3>(name); },
                        {"npz_archive::get_tensor("});
        refused_cleanly([&] { (void)archive.get_tensor<std::int64_t, 0>(name); },
                        {"npz_archive::get_tensor("});
        refused_cleanly(
            [&] { require(archive.get_string(name).size() == a.data.size(), "get_string"); },
            {"npz_archive::get_string("});
    }
}

template <class T>
void load_into_mlp(const std::string& path) {
    advaug::mlp<T> net({3, 4, 2}, 1);
    refused_cleanly([&] { io::load_parameters(path, net.parameters()); }, {"load_parameters("});
    refused_cleanly([&] { io::load_model(path, net); },
                    {"load_model(", "load_metadata(", "load_parameters("});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static scratch_dir dir("npz");
    static const std::string path = dir.file("input.npz");

    // 1. The .npy parser alone.
    advaug::detail::npy::npy_header header;
    const auto npy_fail = [](const std::string& why) -> void {
        throw std::runtime_error("parse_npy(): " + why);
    };
    if (refused_cleanly([&] { header = advaug::detail::npy::parse_npy(data, size, npy_fail); },
                        {"parse_npy(): "})) {
        require(header.data_offset <= size, "parse_npy: data offset past the end");
        io::npz_array a{"a", header.dtype, header.shape,
                        std::vector<std::uint8_t>(data + header.data_offset, data + size)};
        io::npz_archive archive;
        must_succeed("npz_archive::add of a parsed .npy", [&] { archive.add(a); });
        fetch_all(archive);  // the getters on any shape and dtype the parser lets through
        check_round_trip(archive);
    }

    // 2. The archive reader and the getters.
    io::npz_archive archive;
    if (!refused_cleanly(
            [&] { archive = io::npz_archive::from_bytes(std::span(data, size), "input"); },
            {"npz_archive::load(): 'input' "})) {
        return 0;
    }
    fetch_all(archive);
    check_round_trip(archive);

    // 3. The file readers.
    write_bytes(path, data, size);
    refused_cleanly([&] { (void)io::load_metadata(path); }, {"load_metadata("});
    load_into_mlp<float>(path);
    load_into_mlp<double>(path);
    return 0;
}
