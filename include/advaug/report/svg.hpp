// A small SVG writer for the report's charts: elements are appended as text, every string
// is escaped (detail/format.hpp), and the result is a standalone, well-formed SVG 1.1 file
// with a white background, so it reads the same in a browser, on GitHub (light or dark
// theme) and through rsvg-convert.
//
// Also here: the palette and dash patterns the charts share, and "nice" axis ticks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "advaug/detail/format.hpp"

namespace advaug::detail::report {

/// Okabe and Ito's colour-blind-safe palette, in the order the charts use it (yellow, which
/// is hard to see on white, last).
inline constexpr const char* palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                          "#E69F00", "#56B4E9", "#000000", "#F0E442"};
inline constexpr std::size_t palette_size = sizeof(palette) / sizeof(palette[0]);

inline const char* colour(std::size_t i) { return palette[i % palette_size]; }

/// Rough width in pixels of `s` set in a sans-serif font of `size` pixels (DejaVu Sans,
/// Helvetica, Arial). Errs wide, so that layouts leave room rather than clip.
inline double text_width(std::string_view s, double size) {
    double em = 0;
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if ((u & 0xC0) == 0x80) continue;  // UTF-8 continuation byte
        if (std::string_view("il.,:;|!'` ").find(ch) != std::string_view::npos) {
            em += 0.32;
        } else if (std::string_view("fjrt()[]-/").find(ch) != std::string_view::npos) {
            em += 0.42;
        } else if (std::string_view("mwMW%@").find(ch) != std::string_view::npos) {
            em += 0.92;
        } else if (ch >= 'A' && ch <= 'Z') {
            em += 0.72;
        } else {
            em += 0.62;
        }
    }
    return em * size;
}

/// stroke-dasharray patterns; "" is a solid line.
inline constexpr const char* dashes[] = {"", "9 5", "2.5 3.5", "12 4 3 4", "5 5", "1.5 6"};
inline constexpr std::size_t dashes_size = sizeof(dashes) / sizeof(dashes[0]);

inline const char* dash(std::size_t i) { return dashes[i % dashes_size]; }

inline constexpr const char* font_family = "DejaVu Sans, Helvetica, Arial, sans-serif";
inline constexpr const char* ink = "#222222";    // text and axes
inline constexpr const char* muted = "#555555";  // subtitles, tick labels
inline constexpr const char* grid_colour = "#e3e3e3";

/// How a text element is set.
struct text_style {
    double size = 12;
    const char* anchor = "start";  // start | middle | end
    bool bold = false;
    const char* fill = ink;
    double rotate = 0;  // degrees, about the anchor point
    bool centre_vertically = false;
};

/// Marker shapes for data points.
enum class marker { circle, square, triangle, diamond, triangle_down };

inline marker marker_for(std::size_t i) {
    constexpr marker all[] = {marker::circle, marker::square, marker::triangle, marker::diamond,
                              marker::triangle_down};
    return all[i % 5];
}

class svg_document {
public:
    svg_document(double width, double height) : width_(width), height_(height) {}

    double width() const { return width_; }
    double height() const { return height_; }

    /// Opens a group; `title` becomes a tooltip for everything inside it.
    void open_group(std::string_view attributes = {}, std::string_view title = {}) {
        body_ += "<g";
        if (!attributes.empty()) {
            body_ += ' ';
            body_ += attributes;
        }
        body_ += ">\n";
        if (!title.empty()) body_ += "<title>" + xml_escape(title) + "</title>\n";
        ++depth_;
    }
    void close_group() {
        body_ += "</g>\n";
        --depth_;
    }

    void rect(double x, double y, double w, double h, std::string_view fill,
              std::string_view extra = {}, std::string_view title = {}) {
        body_ += "<rect x=\"" + fixed(x) + "\" y=\"" + fixed(y) + "\" width=\"" +
                 fixed(std::max(w, 0.0)) + "\" height=\"" + fixed(std::max(h, 0.0)) + "\" fill=\"" +
                 std::string(fill) + '"';
        close_element(extra, title, "rect");
    }

    void line(double x1, double y1, double x2, double y2, std::string_view stroke,
              double stroke_width = 1, std::string_view dasharray = {},
              std::string_view extra = {}) {
        body_ += "<line x1=\"" + fixed(x1) + "\" y1=\"" + fixed(y1) + "\" x2=\"" + fixed(x2) +
                 "\" y2=\"" + fixed(y2) + "\" stroke=\"" + std::string(stroke) +
                 "\" stroke-width=\"" + fixed(stroke_width) + '"';
        if (!dasharray.empty()) body_ += " stroke-dasharray=\"" + std::string(dasharray) + '"';
        close_element(extra, {}, "line");
    }

    void polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                  double stroke_width, std::string_view dasharray = {},
                  std::string_view extra = {}) {
        body_ += "<polyline fill=\"none\" stroke=\"" + std::string(stroke) + "\" stroke-width=\"" +
                 fixed(stroke_width) + "\" stroke-linejoin=\"round\" stroke-linecap=\"round\"";
        if (!dasharray.empty()) body_ += " stroke-dasharray=\"" + std::string(dasharray) + '"';
        body_ += " points=\"";
        for (std::size_t i = 0; i < points.size(); ++i) {
            if (i) body_ += ' ';
            body_ += fixed(points[i].first) + ',' + fixed(points[i].second);
        }
        body_ += '"';
        close_element(extra, {}, "polyline");
    }

    /// A data-point marker of about `r` pixels radius, white-edged so that it stands out on
    /// top of lines and of other markers.
    void point(marker m, double x, double y, double r, std::string_view fill,
               std::string_view title = {}) {
        const std::string common =
            "fill=\"" + std::string(fill) + "\" stroke=\"#ffffff\" stroke-width=\"1.2\"";
        switch (m) {
            case marker::circle:
                body_ += "<circle cx=\"" + fixed(x) + "\" cy=\"" + fixed(y) + "\" r=\"" + fixed(r) +
                         "\" " + common;
                close_element({}, title, "circle");
                return;
            case marker::square: {
                const double s = r * 0.9;
                body_ += "<rect x=\"" + fixed(x - s) + "\" y=\"" + fixed(y - s) + "\" width=\"" +
                         fixed(2 * s) + "\" height=\"" + fixed(2 * s) + "\" " + common;
                close_element({}, title, "rect");
                return;
            }
            case marker::triangle:
            case marker::triangle_down:
            case marker::diamond: {
                std::vector<std::pair<double, double>> p;
                const double s = r * 1.2;
                if (m == marker::triangle) {
                    p = {{x, y - s}, {x + s * 0.95, y + s * 0.7}, {x - s * 0.95, y + s * 0.7}};
                } else if (m == marker::triangle_down) {
                    p = {{x, y + s}, {x + s * 0.95, y - s * 0.7}, {x - s * 0.95, y - s * 0.7}};
                } else {
                    p = {{x, y - s}, {x + s, y}, {x, y + s}, {x - s, y}};
                }
                body_ += "<polygon points=\"";
                for (std::size_t i = 0; i < p.size(); ++i) {
                    if (i) body_ += ' ';
                    body_ += fixed(p[i].first) + ',' + fixed(p[i].second);
                }
                body_ += "\" " + common;
                close_element({}, title, "polygon");
                return;
            }
        }
    }

    void text(double x, double y, std::string_view content, const text_style& style = {}) {
        body_ += "<text x=\"" + fixed(x) + "\" y=\"" + fixed(y) + "\" font-size=\"" +
                 fixed(style.size) + '"';
        if (std::string_view(style.anchor) != "start") {
            body_ += " text-anchor=\"" + std::string(style.anchor) + '"';
        }
        if (style.bold) body_ += " font-weight=\"bold\"";
        if (std::string_view(style.fill) != ink)
            body_ += " fill=\"" + std::string(style.fill) + '"';
        if (style.centre_vertically) body_ += " dy=\"0.35em\"";
        if (style.rotate != 0) {
            body_ += " transform=\"rotate(" + fixed(style.rotate) + ' ' + fixed(x) + ' ' +
                     fixed(y) + ")\"";
        }
        body_ += '>' + xml_escape(content) + "</text>\n";
    }

    /// The complete file.
    std::string str(std::string_view title, std::string_view description) const {
        std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
               fixed(width_, 0) + "\" height=\"" + fixed(height_, 0) + "\" viewBox=\"0 0 " +
               fixed(width_, 0) + ' ' + fixed(height_, 0) + "\" font-family=\"" + font_family +
               "\" fill=\"" + ink + "\">\n";
        out += "<title>" + xml_escape(title) + "</title>\n";
        out += "<desc>" + xml_escape(description) + "</desc>\n";
        out += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
        out += body_;
        for (int i = 0; i < depth_; ++i) out += "</g>\n";  // unbalanced callers stay well-formed
        out += "</svg>\n";
        return out;
    }

private:
    void close_element(std::string_view extra, std::string_view title, const char* name) {
        if (!extra.empty()) {
            body_ += ' ';
            body_ += extra;
        }
        if (title.empty()) {
            body_ += "/>\n";
        } else {
            body_ += "><title>" + xml_escape(title) + "</title></" + name + ">\n";
        }
    }

    double width_, height_;
    std::string body_;
    int depth_ = 0;
};

/// Axis ticks from 0 to at least `max` at a round step (1, 2, 2.5 or 5 times a power of
/// ten), about `target` intervals; the last tick is >= max. Also the decimals the step needs.
struct ticks {
    std::vector<double> values;
    int decimals = 0;
    double end() const { return values.back(); }
};

inline ticks nice_ticks(double max, int target = 5) {
    ticks t;
    if (!(max > 0) || !std::isfinite(max)) {
        t.values = {0, 1};
        t.decimals = 0;
        return t;
    }
    const double raw = max / target;
    const double power = std::pow(10.0, std::floor(std::log10(raw)));
    double step = power;
    int extra = 0;
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
        if (m * power >= raw * 0.999) {
            step = m * power;
            extra = m == 2.5 ? 1 : 0;
            break;
        }
    }
    t.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)) + extra);
    const auto count = static_cast<int>(std::ceil(max / step - 1e-9));
    for (int i = 0; i <= count; ++i) t.values.push_back(i * step);
    return t;
}

}  // namespace advaug::detail::report
