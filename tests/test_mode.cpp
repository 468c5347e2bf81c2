#include <doctest/doctest.h>

#include <stdexcept>

#include "support/models.hpp"

using namespace advaug;

TEST_CASE("mode_guard sets a mode and restores the previous one, also on exceptions") {
    mlp<float> net({3, 4, 2}, 0);
    net.set_mode(mode::train);
    {
        mode_guard guard(net, mode::eval);
        CHECK(net.mode() == mode::eval);
    }
    CHECK(net.mode() == mode::train);
    try {
        mode_guard guard(net, mode::eval);
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK(net.mode() == mode::train);
}
