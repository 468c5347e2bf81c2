// check_throws: a call must throw a given exception type whose message names every expected part.
#pragma once

#include <doctest/doctest.h>

#include <exception>
#include <functional>
#include <initializer_list>
#include <string>

namespace advaug::testing {

/// Runs `f`, which must throw exactly `E`; checks that the message contains every part.
template <class E>
void check_throws(const std::function<void()>& f, std::initializer_list<std::string> parts) {
    std::string message;
    bool thrown = false;
    try {
        f();
    } catch (const E& e) {
        thrown = true;
        message = e.what();
    } catch (const std::exception& e) {
        FAIL("wrong exception type, message: " << e.what());
    }
    REQUIRE_MESSAGE(thrown, "no exception thrown");
    INFO("message: " << message);
    for (const auto& part : parts)
        CHECK_MESSAGE(message.find(part) != std::string::npos, "missing: " << part);
}

}  // namespace advaug::testing
