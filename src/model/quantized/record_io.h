// SPDX-License-Identifier: MIT
// Helpers of the loader rows: find the modules of a scheme by a marker suffix, read a module's tensors as
// scheme::TensorRecord (suffix relative to the module prefix), and present dequantized weights.
#pragma once

#include "core/error.h"
#include "model/quantized/quantized_store.h"
#include "scheme/int_group/tensor_record.h"

#include <functional>
#include <string>
#include <vector>

namespace lowbit::model::quantized {

// Module prefixes P of every file tensor named P + marker (e.g. marker ".SCB"), sorted.
std::vector<std::string> modules_with(const format::TensorStore& store, const std::string& marker);

// The file tensors "P.<suffix>" for which keep(suffix) is true, copied into records. Errors: a dtype/shape the
// record type cannot hold (kBadInput naming the tensor).
Result<std::vector<scheme::TensorRecord>> read_records(const format::TensorStore& store, const std::string& prefix,
                                                       const std::function<bool(const std::string&)>& keep);

// Hides every record of `prefix` in `store` (the names P.<suffix>) and releases their file pages
// (TensorStore::release): the records were copied and consumed.
void hide_records(QuantizedStore& store, const std::string& prefix, const std::vector<scheme::TensorRecord>& records);

// Presents `values` ([n_rows, n_cols] f32) as "P.weight".
void put_dense(QuantizedStore& store, const std::string& prefix, int64_t n_rows, int64_t n_cols,
               const std::vector<float>& values);

// Presents a repacked weight (model/quantized/repack.h) as "P.weight" of its block dtype, and its column order (GPTQ
// act-order) as "P.<kColPermSuffix>" I32 [K] (model/weights.h).
struct PackedWeight;
void put_packed(QuantizedStore& store, const std::string& prefix, PackedWeight packed);

// Errors naming a module: "<prefix>: <message>".
Error module_error(const Error& e, const std::string& prefix);

} // namespace lowbit::model::quantized
