// Fuzz target: the checkpoint reader, trainer::resume (include/advaug/training/checkpoint.hpp),
// with the optimizer states it reads (adam and sgd, include/advaug/optim/).
//
// A checkpoint ends in a CRC-32 of everything before it, so almost every mutation would
// stop at the checksum. Each input is therefore resumed twice per optimizer: as it is, and
// with its last four bytes replaced by the right CRC, which lets the fuzzer reach the parser
// behind the checksum. The trainers are built afresh for every input (deterministic runs).
//
// Oracles: a refused checkpoint leaves the model, the optimizer and the position unchanged
// (resume() promises all or nothing); an accepted one trains on (fit() may only refuse with a
// numeric_error, e.g. for NaN weights), and saving and resuming it again is a fixed point.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "checkpoint_setup.hpp"
#include "fuzz_common.hpp"

namespace {

using namespace advaug_fuzz;

/// Everything resume() may change, as bytes.
template <class Net, class Opt, class Trainer>
std::vector<std::uint8_t> fingerprint(Net& net, const Opt& opt, const Trainer& tr) {
    advaug::io::binary_writer w;
    for (const auto& p : net.parameters()) w.write_array(p.value.data(), p.value.size());
    opt.save_state(w);
    w.write<std::uint64_t>(tr.next_epoch());
    w.write<std::uint64_t>(tr.next_batch());
    return w.bytes();
}

std::vector<std::uint8_t> read_all(const std::string& path) {
    std::vector<std::uint8_t> out;
    must_succeed("reading a saved checkpoint", [&] { out = advaug::io::read_file(path); });
    return out;
}

template <class Opt>
void resume_with(Opt (*make_optimizer)(), const std::string& path, const std::string& path2) {
    auto net = checkpoint_model();
    auto opt = make_optimizer();
    advaug::trainer tr(net, opt, checkpoint_options());
    const auto before = fingerprint(net, opt, tr);
    const bool accepted = refused_cleanly(
        [&] { tr.resume(path); }, {"trainer::resume(", "adam::load_state(", "sgd::load_state("});
    if (!accepted) {
        require(fingerprint(net, opt, tr) == before, "a refused checkpoint changed the trainer");
        return;
    }

    // Saved again and resumed by a fresh trainer, the state must come back identical.
    tr.save_checkpoint(path2);
    const auto saved = read_all(path2);
    {
        auto net2 = checkpoint_model();
        auto opt2 = make_optimizer();
        advaug::trainer tr2(net2, opt2, checkpoint_options());
        must_succeed("resuming a re-saved checkpoint", [&] { tr2.resume(path2); });
        require(fingerprint(net2, opt2, tr2) == fingerprint(net, opt, tr),
                "a re-saved checkpoint resumes to another state");
        tr2.save_checkpoint(path2);
        require(read_all(path2) == saved, "saving a resumed checkpoint is not a fixed point");
    }

    const auto data = checkpoint_data();
    refused_cleanly([&] { (void)tr.fit(data); }, {"trainer::fit(", "trainer::"});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static scratch_dir dir("checkpoint");
    static const std::string path = dir.file("input.ckpt");
    static const std::string path2 = dir.file("resaved.ckpt");

    write_bytes(path, data, size);
    resume_with(checkpoint_adam, path, path2);
    resume_with(checkpoint_sgd, path, path2);

    if (size >= 4) {
        std::vector<std::uint8_t> fixed(data, data + size);
        const auto crc =
            static_cast<std::uint32_t>(::crc32(0L, fixed.data(), static_cast<uInt>(size - 4)));
        std::uint32_t stored;
        std::memcpy(&stored, fixed.data() + size - 4, 4);
        if (stored != crc) {  // else the runs above already read it
            std::memcpy(fixed.data() + size - 4, &crc, 4);
            write_bytes(path, fixed.data(), size);
            resume_with(checkpoint_adam, path, path2);
            resume_with(checkpoint_sgd, path, path2);
        }
    }
    return 0;
}
