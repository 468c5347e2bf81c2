// What the user sees during training: the header line, a progress bar on a terminal, plain
// lines otherwise, the seed's log line, epoch summaries, and an optional JSON-lines log for
// machines. The records it prints are in reports.hpp.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <variant>

#include "advaug/backend/info.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/format.hpp"
#include "advaug/training/reports.hpp"
#include "advaug/training/train_options.hpp"

namespace advaug::detail {

/// The line fit() starts with: the method, the data, the schedule, where a resumed run picks
/// up, and the kernel library that runs the products (backend/info.hpp).
inline std::string training_header(const train_options& o, std::size_t samples, std::size_t batches,
                                   std::size_t next_epoch, std::size_t next_batch) {
    std::ostringstream h;
    h << "advaug: training " << to_string(o.method()) << " on " << samples << " samples, " << o.epochs()
      << " epochs of " << batches << " batches of " << o.batch_size() << ", lr "
      << o.learning_rate()->describe();
    if (o.method() != training_method::plain) {
        auto search = [&](const worst_case_options& w) {
            const char* how[] = {"gradient", "random", "both", "exhaustive"};
            h << "search " << how[static_cast<int>(w.method())] << " (steps " << w.steps() << " of "
              << w.step_fraction() << " x param_scale, " << (w.random_start() ? "random" : "identity")
              << " start, restarts " << w.restarts() << ", samples " << w.samples() << ")";
        };
        if (const auto& f = o.family()) {
            h << ", a family of " << std::visit([](const auto& g) { return g.num_params(); }, f->family)
              << " parameters, ";
            search(f->search);
            h << ", alpha " << o.alpha();
        } else if (const auto& c = o.consistency()) {
            std::visit([&](const auto& m) {
                h << ", a mixture of " << m.operations().size() << " operations (width " << m.options().width()
                  << ", depth 1-" << m.options().max_depth() << ")";
            }, c->mixture);
            h << ", consistency weight " << c->weight;
            if (o.method() == training_method::augmax) {
                h << ", ";
                search(c->search);
            }
            if (o.epsilon()) h << ", summary epsilon " << *o.epsilon() << " (raw units)";
        } else {
            h << ", epsilon " << o.epsilon().value_or(0.0) << " (raw units), alpha " << o.alpha();
        }
        if (o.epsilon_warmup() > 0) {
            h << (o.family() ? ", budget" : ", epsilon") << " warm-up " << o.epsilon_warmup() << " epochs";
        }
        if (o.method() == training_method::pgd) h << ", " << o.pgd_steps() << " steps of " << o.pgd_step_size();
        h << ", attack in " << (o.attack_mode() == mode::eval ? "eval" : "train") << " mode";
    }
    h << ", seed " << o.seed();
    if (next_epoch > 0 || next_batch > 0) h << "; resuming at epoch " << next_epoch + 1 << " batch " << next_batch + 1;
    h << "; kernels: " << backend::describe().summary();
    return h.str();
}

class progress_reporter {
public:
    progress_reporter(const train_options& options, std::size_t epochs)
        : out_(options.output() ? *options.output() : std::cout), epochs_(epochs),
          batch_size_(static_cast<double>(options.batch_size())), family_(options.family().has_value()) {
        style_ = options.progress();
        if (style_ == progress_style::automatic) {
            const bool terminal = options.output() == nullptr && ::isatty(STDOUT_FILENO);
            style_ = terminal ? progress_style::bar : progress_style::lines;
        }
        if (!options.json_log().empty()) {
            json_.open(options.json_log(), std::ios::out | std::ios::app);
            if (!json_) {
                throw io_error(concat("trainer(): cannot open the JSON log '", options.json_log(), "'"));
            }
        }
    }

    void header(const std::string& text) {
        if (style_ != progress_style::none) out_ << text << '\n' << std::flush;
    }

    /// Called after every batch; `logged` batches carry all three losses.
    void batch(const batch_report& r, bool logged) {
        if (style_ == progress_style::bar) {
            draw_bar(r);
        }
        if (!logged) return;
        if (style_ == progress_style::lines) out_ << seed_line(r) << '\n' << std::flush;
        if (json_) {
            json_ << "{\"type\":\"batch\",\"epoch\":" << r.epoch + 1 << ",\"batch\":" << r.batch + 1
                  << ",\"batches\":" << r.batches_per_epoch << ",\"lr\":" << json_number(r.lr)
                  << ",\"epsilon\":" << json_number(r.epsilon) << ",\"loss\":" << json_number(r.loss)
                  << ",\"clean_loss\":" << json_number(r.clean_loss)
                  << ",\"adversarial_loss\":" << json_number(r.adversarial_loss)
                  << ",\"samples_per_second\":" << json_number(r.samples_per_second) << "}\n"
                  << std::flush;
        }
    }

    void epoch(const epoch_report& r) {
        if (style_ == progress_style::bar) out_ << '\n';
        if (style_ != progress_style::none) out_ << epoch_line(r) << '\n' << std::flush;
        if (json_) {
            json_ << "{\"type\":\"epoch\",\"epoch\":" << r.epoch + 1 << ",\"loss\":" << json_number(r.loss)
                  << ",\"clean_loss\":" << json_number(r.clean_loss)
                  << ",\"adversarial_loss\":" << json_number(r.adversarial_loss)
                  << ",\"batches\":" << r.batches << ",\"clean_loss_batches\":" << r.clean_loss_batches
                  << ",\"clean_accuracy\":" << json_number(r.clean_accuracy)
                  << ",\"pgd_accuracy\":" << json_number(r.pgd_accuracy)
                  << ",\"guard_pgd_accuracy\":" << json_number(r.guard_pgd_accuracy)
                  << ",\"seconds\":" << json_number(r.seconds)
                  << ",\"samples_per_second\":" << json_number(r.samples_per_second)
                  << ",\"collapse\":" << (r.collapse_detected ? "true" : "false") << "}\n"
                  << std::flush;
        }
    }

    void message(const std::string& text) {
        if (style_ == progress_style::bar) out_ << '\n';
        if (style_ != progress_style::none) out_ << text << '\n' << std::flush;
    }

    /// The seed's line: "Loss: total (Standard: clean, Adv: adversarial)", with the position.
    static std::string seed_line(const batch_report& r) {
        std::ostringstream s;
        s << std::fixed << std::setprecision(4) << "epoch " << r.epoch + 1 << " batch " << r.batch + 1
          << '/' << r.batches_per_epoch << "  Loss: " << r.loss << " (Standard: " << r.clean_loss;
        if (std::isfinite(r.adversarial_loss)) s << ", Adv: " << r.adversarial_loss;
        s << ")  lr " << std::setprecision(5) << r.lr;
        if (r.epsilon > 0) s << "  eps " << r.epsilon;
        s << "  " << std::setprecision(0) << r.samples_per_second << " samples/s";
        return s.str();
    }

    std::string epoch_line(const epoch_report& r) const {
        std::ostringstream s;
        s << std::fixed << std::setprecision(4) << "epoch " << r.epoch + 1 << '/' << epochs_
          << " done in " << format_duration(r.seconds) << "  loss " << r.loss << " (";
        if (r.clean_loss_batches > 0) {
            s << "Standard";
            if (r.clean_loss_batches < r.batches) s << " on " << r.clean_loss_batches << " logged batches";
            s << ": " << r.clean_loss << (std::isfinite(r.adversarial_loss) ? ", " : "");
        }
        if (std::isfinite(r.adversarial_loss)) s << "Adv: " << r.adversarial_loss;
        s << ')' << std::setprecision(2);
        if (std::isfinite(r.clean_accuracy)) s << "  val clean " << 100 * r.clean_accuracy << '%';
        // method family: the family's worst case in place of PGD
        const char* attack = family_ ? "worst case" : "PGD";
        if (std::isfinite(r.pgd_accuracy)) s << "  val " << attack << ' ' << 100 * r.pgd_accuracy << '%';
        if (std::isfinite(r.guard_pgd_accuracy)) s << "  guard " << attack << ' ' << 100 * r.guard_pgd_accuracy << '%';
        s << std::setprecision(0) << "  " << r.samples_per_second << " samples/s";
        return s.str();
    }

private:
    void draw_bar(const batch_report& r) {
        const auto now = std::chrono::steady_clock::now();
        if (r.batch + 1 < r.batches_per_epoch && now - last_draw_ < std::chrono::milliseconds(100)) return;
        last_draw_ = now;
        constexpr int width = 24;
        const double done = static_cast<double>(r.batch + 1) / static_cast<double>(r.batches_per_epoch);
        const int filled = static_cast<int>(done * width);
        const double remaining_batches = static_cast<double>(r.batches_per_epoch - r.batch - 1);
        const double batch_rate = r.samples_per_second > 0 ? r.samples_per_second : 0;
        std::ostringstream s;
        s << "\repoch " << r.epoch + 1 << '/' << epochs_ << " [" << std::string(filled, '#')
          << std::string(width - filled, '.') << "] " << r.batch + 1 << '/' << r.batches_per_epoch
          << std::fixed << std::setprecision(0) << "  " << batch_rate << " samples/s";
        if (batch_rate > 0) {
            s << "  ETA " << format_duration(remaining_batches * batch_size_ / batch_rate);
        }
        s << std::setprecision(4) << "  loss " << r.loss << " (std " << r.clean_loss;
        if (std::isfinite(r.adversarial_loss)) s << ", adv " << r.adversarial_loss;
        s << ")   ";
        out_ << s.str() << std::flush;
    }

    std::ostream& out_;
    std::size_t epochs_;
    double batch_size_;
    bool family_;  // the robust accuracies are the family's worst case, not PGD's
    progress_style style_;
    std::ofstream json_;
    std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace advaug::detail
