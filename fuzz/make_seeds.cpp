// Writes the seed corpora of the fuzz targets: small valid files made by advaug's own
// writers (or, for IDX and CSV, by hand in the documented format), and a few broken ones that
// stop at different checks. The committed fuzz/corpus/ is its output:
//
//   build-fuzz/fuzz_make_seeds fuzz/corpus
//
// Files are deterministic, so rerunning it changes nothing unless a writer changed.
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include <advaug/io/model_file.hpp>
#include <advaug/io/npz.hpp>
#include <advaug/models/mlp.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint_setup.hpp"

namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

namespace {

fs::path out_root;

void put(const std::string& target, const std::string& name, const bytes& b) {
    const fs::path dir = out_root / target;
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void put(const std::string& target, const std::string& name, const std::string& s) {
    put(target, name, bytes(s.begin(), s.end()));
}

bytes gzip(const bytes& in) {
    z_stream zs{};
    if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("deflateInit2");
    }
    bytes out(deflateBound(&zs, in.size()) + 32);
    zs.next_in = const_cast<Bytef*>(in.data());
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

bytes idx(std::uint8_t type, std::vector<std::uint32_t> dims, std::size_t element_size) {
    bytes out = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
    std::size_t n = element_size;
    for (auto d : dims) {
        for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
        n *= d;
    }
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(i * 37 % 256));
    return out;
}

void idx_seeds() {
    const bytes images = idx(0x08, {2, 4, 4}, 1);  // what fuzz_idx's companion files match
    bytes labels = idx(0x08, {2}, 1);
    labels[8] = 0, labels[9] = 1;
    put("idx", "images_2x4x4", images);
    put("idx", "images_2x4x4.gz", gzip(images));
    put("idx", "labels_2", labels);
    put("idx", "labels_2.gz", gzip(labels));
    put("idx", "f32_rank1", idx(0x0D, {3}, 4));
    put("idx", "i16_rank2.gz", gzip(idx(0x0B, {2, 3}, 2)));
    put("idx", "f64_rank4", idx(0x0E, {1, 2, 1, 2}, 8));
    // broken: a truncated payload, a zero dimension, two gzip members, a cut gzip stream
    put("idx", "truncated_payload", bytes(images.begin(), images.end() - 5));
    put("idx", "zero_dim", idx(0x08, {0, 4, 4}, 1));
    bytes two = gzip(bytes(images.begin(), images.begin() + 10));
    const bytes rest = gzip(bytes(images.begin() + 10, images.end()));
    two.insert(two.end(), rest.begin(), rest.end());
    put("idx", "two_gzip_members.gz", two);
    const bytes gz = gzip(images);
    put("idx", "cut_gzip.gz", bytes(gz.begin(), gz.end() - 9));
}

/// An .npz with one deflated member, as numpy.savez_compressed writes (advaug writes stored).
bytes deflated_npz(const std::string& npy) {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
    zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
    zip_source_keep(buffer);
    zip_source_t* member = zip_source_buffer(archive, npy.data(), npy.size(), 0);
    const zip_int64_t index = zip_file_add(archive, "x.npy", member, 0);
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), ZIP_CM_DEFLATE, 9);
    zip_file_set_mtime(archive, static_cast<zip_uint64_t>(index), 315532800, 0);
    if (zip_close(archive) != 0) throw std::runtime_error("zip_close");
    zip_source_open(buffer);
    zip_source_seek(buffer, 0, SEEK_END);
    bytes out(static_cast<std::size_t>(zip_source_tell(buffer)));
    zip_source_seek(buffer, 0, SEEK_SET);
    zip_source_read(buffer, out.data(), out.size());
    zip_source_close(buffer);
    zip_source_free(buffer);
    zip_error_fini(&error);
    return out;
}

bytes file_bytes(const fs::path& p) { return advaug::io::read_file(p.string()); }

void npz_seeds(const fs::path& tmp) {
    namespace io = advaug::io;
    // what fuzz_npz loads into: mlp({3, 4, 2}), float and double
    advaug::mlp<float> net({3, 4, 2}, 1);
    io::save_model((tmp / "mlp_f32.npz").string(), net);
    put("npz", "mlp_f32.npz", file_bytes(tmp / "mlp_f32.npz"));
    advaug::mlp<double> net64({3, 4, 2}, 1);
    io::save_parameters((tmp / "mlp_f64.npz").string(), net64.parameters(), {{"note", "seed"}});
    put("npz", "mlp_f64.npz", file_bytes(tmp / "mlp_f64.npz"));

    io::npz_archive mixed;
    mixed.add<float>("f", std::vector<float>{1.5f, -2.0f, 0.0f, 3.0f, 4.0f, 5.0f}, {2, 3});
    mixed.add<std::int64_t>("i", std::vector<std::int64_t>{7, -8}, {2});
    mixed.add<double>("scalar", std::vector<double>{3.25}, {});
    mixed.add<std::uint8_t>("empty", std::vector<std::uint8_t>{}, {0, 3});
    mixed.add_string("__advaug__.architecture", "mlp 3-4-2");
    mixed.add(io::npz_array{"i4", "<i4", {2}, {1, 0, 0, 0, 2, 0, 0, 0}});
    const bytes mixed_bytes = mixed.to_bytes();
    put("npz", "mixed.npz", mixed_bytes);
    put("npz", "empty.npz", io::npz_archive{}.to_bytes());

    const std::string npy =
        advaug::detail::npz::encode_npy(io::npz_array{"x", "<f4", {2, 2}, bytes(16, 0x3f)});
    put("npz", "x_f32.npy", npy);
    put("npz", "deflated.npz", deflated_npz(npy));
    put("npz", "c8_v1.npy",
        advaug::detail::npz::encode_npy(io::npz_array{"c", "<c8", {1}, bytes(8, 1)}));
    // version 2.0 header (4-byte length), as numpy writes for very long headers
    const std::string dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }\n";
    std::string v2("\x93NUMPY\x02\x00", 8);
    v2 += static_cast<char>(dict.size());
    v2.append(3, '\0');
    v2 += dict + "abc";
    put("npz", "u1_v2.npy", v2);
    // broken: a truncated archive, Fortran order, big-endian
    put("npz", "truncated.npz", bytes(mixed_bytes.begin(), mixed_bytes.end() - 30));
    std::string fortran = npy;
    fortran.replace(fortran.find("False"), 5, "True ");
    put("npz", "fortran.npy", fortran);
    std::string big = npy;
    big[big.find("<f4")] = '>';
    put("npz", "big_endian.npy", big);
}

void checkpoint_seeds(const fs::path& tmp) {
    using namespace advaug_fuzz;
    const auto data = checkpoint_data();
    const auto ckpt = (tmp / "c.ckpt").string();
    {
        auto net = checkpoint_model();
        auto opt = checkpoint_adam();
        advaug::trainer tr(net, opt, checkpoint_options());
        tr.save_checkpoint(ckpt);  // before any step: an empty optimizer state
        put("checkpoint", "adam_start.ckpt", file_bytes(ckpt));
    }
    {
        auto net = checkpoint_model();
        auto opt = checkpoint_adam();
        // A checkpoint after every batch. When batch 1 of epoch 0 reports, the file holds the
        // mid-epoch checkpoint written after batch 0; at the end, the one of the last epoch.
        auto o = checkpoint_options().checkpoint(ckpt, 1).log_every(1).on_batch(
            [&](const advaug::batch_report& r) {
                if (r.epoch == 0 && r.batch == 1) {
                    put("checkpoint", "adam_mid_epoch.ckpt", file_bytes(ckpt));
                }
            });
        advaug::trainer tr(net, opt, o);
        tr.fit(data);
        put("checkpoint", "adam_end.ckpt", file_bytes(ckpt));
    }
    {
        auto net = checkpoint_model();
        auto opt = checkpoint_sgd();
        advaug::trainer tr(net, opt, checkpoint_options().epochs(1));
        tr.fit(data);
        tr.save_checkpoint(ckpt);
        put("checkpoint", "sgd_one_epoch.ckpt", file_bytes(ckpt));
    }
    const bytes good = file_bytes(ckpt);
    put("checkpoint", "truncated.ckpt", bytes(good.begin(), good.begin() + 40));
}

void csv_seeds() {
    put("csv", "plain.csv", "1,2,3\n4,5,6\n");
    put("csv", "header_quoted_crlf.csv", "a,\"b c\",c\r\n\"1.5\", -2e3 ,+3\r\n\r\n7,8,9\r\n");
    put("csv", "bom_semicolon.csv",
        "\xEF\xBB\xBF"
        "1;2\n3;4\n");
    put("csv", "tabs_nan.csv", "x\ty\nnan\tinf\n1\t-infinity\n");
    // scikit-learn's format (read_sklearn_csv)
    put("csv", "sklearn.csv", "3,2,setosa,versicolor\n5.1,3.5,0\n4.9,3.0,1\n6.2,2.9,1\n");
    // broken: ragged rows, a non-numeric cell, an unclosed quote, a NUL byte
    put("csv", "ragged.csv", "1,2,3\n4,5\n");
    put("csv", "not_a_number.csv", "1,2\n3,abc\n");
    put("csv", "unclosed_quote.csv", "1,\"2\n3,4\n");
    put("csv", "nul.csv", std::string("1,2\n3,\0\n", 8));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTPUT_DIR (writes OUTPUT_DIR/<target>/ files)\n", argv[0]);
        return 2;
    }
    out_root = argv[1];
    const fs::path tmp =
        fs::temp_directory_path() / ("advaug_make_seeds_" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    idx_seeds();
    npz_seeds(tmp);
    checkpoint_seeds(tmp);
    csv_seeds();
    fs::remove_all(tmp);
    return 0;
}
