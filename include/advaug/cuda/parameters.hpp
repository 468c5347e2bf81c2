// The parameters of a device model: one flat device buffer for the values and one for the
// gradients, described by parameter_views in the host models' names, shapes and order.
//
// The views' spans point to DEVICE memory. They keep the contract's promise (they alias the
// model's storage and never move), but only device code may read them: use cuda::sgd, and
// copy_to()/copy_from() to move weights to and from a host model.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "advaug/cuda/tensor.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug::cuda::detail {

/// Grow-only scratch: keeps the allocation when it is large enough.
template <class T>
T* reserve(device_buffer<T>& b, std::size_t n, const char* fn) {
    if (b.size() < n) b.allocate(n, fn);
    return b.data();
}

template <class T>
class parameter_store {
public:
    struct entry {
        std::string name;
        std::vector<std::size_t> shape;
        std::size_t offset, size;
    };

    parameter_store() = default;

    /// Allocates values and gradients for parameters of these names and shapes.
    parameter_store(std::vector<std::pair<std::string, std::vector<std::size_t>>> layout,
                    const char* fn) {
        std::size_t total = 0;
        for (auto& [name, shape] : layout) {
            std::size_t n = 1;
            for (std::size_t d : shape) n *= d;
            entries_.push_back({std::move(name), std::move(shape), total, n});
            total += n;
        }
        values_.allocate(total, fn);
        grads_.allocate(total, fn);
        zero_grad(fn);
    }

    parameter_store(const parameter_store& o) : entries_(o.entries_) {
        const char* fn = "cuda::parameter_store";
        values_.allocate(o.values_.size(), fn);
        grads_.allocate(o.grads_.size(), fn);
        const cudaStream_t s = context::get(fn).stream();
        const std::size_t bytes = o.values_.size() * sizeof(T);
        ADVAUG_CUDA_CHECK(fn, cudaMemcpyAsync(values_.data(), o.values_.data(), bytes,
                                              cudaMemcpyDeviceToDevice, s));
        ADVAUG_CUDA_CHECK(fn, cudaMemcpyAsync(grads_.data(), o.grads_.data(), bytes,
                                              cudaMemcpyDeviceToDevice, s));
    }
    parameter_store& operator=(const parameter_store& o) {
        if (this != &o) *this = parameter_store(o);
        return *this;
    }
    parameter_store(parameter_store&&) noexcept = default;
    parameter_store& operator=(parameter_store&&) noexcept = default;

    T* value(std::size_t i) { return values_.data() + entries_[i].offset; }
    const T* value(std::size_t i) const { return values_.data() + entries_[i].offset; }
    T* grad(std::size_t i) { return grads_.data() + entries_[i].offset; }

    void zero_grad(const char* fn) {
        if (grads_.size() == 0) return;
        ADVAUG_CUDA_CHECK(fn, cudaMemsetAsync(grads_.data(), 0, grads_.size() * sizeof(T),
                                              context::get(fn).stream()));
    }

    std::vector<parameter_view<T>> views() {
        std::vector<parameter_view<T>> out;
        for (const auto& e : entries_) {
            out.push_back({e.name,
                           e.shape,
                           {values_.data() + e.offset, e.size},
                           {grads_.data() + e.offset, e.size}});
        }
        return out;
    }

    /// Uploads a host model's parameters; names and shapes must match, in order.
    void copy_from(const std::vector<parameter_view<T>>& host, const char* fn) {
        check_layout(host, fn);
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            upload(fn, host[i].value.data(), value(i), entries_[i].size);
        }
        context::get(fn).synchronize(fn);  // the host model may change once we return
    }

    /// Downloads the values into a host model's parameters; names and shapes must match.
    void copy_to(const std::vector<parameter_view<T>>& host, const char* fn) const {
        check_layout(host, fn);
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            download(fn, value(i), host[i].value.data(), entries_[i].size);
        }
    }

private:
    void check_layout(const std::vector<parameter_view<T>>& host, const char* fn) const {
        if (host.size() != entries_.size()) {
            advaug::detail::invalid(fn, "the host model has ", host.size(),
                                    " parameters, the device model ", entries_.size());
        }
        for (std::size_t i = 0; i < host.size(); ++i) {
            if (host[i].name != entries_[i].name || host[i].shape != entries_[i].shape) {
                advaug::detail::invalid(fn, "host parameter ", i, " is \"", host[i].name, "\" ",
                                        advaug::detail::shape_string(host[i].shape),
                                        ", the device model expects \"", entries_[i].name, "\" ",
                                        advaug::detail::shape_string(entries_[i].shape));
            }
        }
    }

    std::vector<entry> entries_;
    device_buffer<T> values_, grads_;
};

/// read_parameter / write_parameter (backend/host.hpp) for a device model's views.
template <class T>
void read_device_parameter(const parameter_view<T>& p, std::span<T> out) {
    const char* fn = "cuda::read_parameter";
    if (out.size() != p.value.size()) {
        advaug::detail::invalid(fn, "out has ", out.size(), " elements, parameter '", p.name,
                                "' has ", p.value.size());
    }
    download(fn, p.value.data(), out.data(), out.size());
}

template <class T>
void write_device_parameter(const parameter_view<T>& p, std::span<const T> in) {
    const char* fn = "cuda::write_parameter";
    if (in.size() != p.value.size()) {
        advaug::detail::invalid(fn, "in has ", in.size(), " elements, parameter '", p.name,
                                "' has ", p.value.size());
    }
    upload(fn, in.data(), p.value.data(), in.size());
    context::get(fn).synchronize(fn);  // the caller's buffer may go away
}

}  // namespace advaug::cuda::detail
