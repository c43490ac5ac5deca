// SPDX-License-Identifier: Apache-2.0
// Hostile but structurally plausible image bytes for the input-hardening tests: JPEGs with
// crafted Exif segments, corrupt scan data or a lying frame header, and very thin images.
// Everything is built in memory from the sample images; nothing is downloaded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cvdeploy::testing {

// A TIFF structure as it follows "Exif\0\0": byte order ("II" when `little`, else "MM"),
// magic 42, IFD0 offset `ifd`, then `tail` verbatim (entry count, entries, ... as the test
// wants them; offsets in `tail` count from the start of the TIFF, so `tail` starts at 8).
std::vector<uint8_t> ExifTiff(bool little, uint32_t ifd, const std::vector<uint8_t>& tail = {});

// A TIFF with IFD0 at offset 8 holding one Orientation entry (SHORT, count 1) = `value`.
std::vector<uint8_t> ExifTiffWithOrientation(bool little, uint16_t value);

// `jpeg` with an APP1 segment "Exif\0\0" + `tiff` inserted right after its SOI marker.
std::vector<uint8_t> JpegWithExif(const std::vector<uint8_t>& jpeg,
                                  const std::vector<uint8_t>& tiff);

// The first `keep` bytes of `jpeg` (scan data cut short) followed by an EOI marker, so the
// container looks complete: libjpeg warns "Premature end of JPEG file" and fills grey.
std::vector<uint8_t> TruncatedJpegWithEoi(const std::vector<uint8_t>& jpeg, size_t keep);

// `jpeg` with the width and height of its frame header (SOF) replaced: the header no longer
// matches the scan data ("Corrupt JPEG data" warnings from libjpeg).
std::vector<uint8_t> JpegWithFrameSize(const std::vector<uint8_t>& jpeg, int width, int height);

// A PNG of `width` x `height` grey-ish pixels (a gradient, so it is not all one value).
std::vector<uint8_t> GradientPng(int width, int height);

// The bytes of a file (std::runtime_error naming it when unreadable).
std::vector<uint8_t> ReadBytes(const std::string& path);
// Writes `bytes` to dir/name and returns the path (std::runtime_error on failure).
std::string WriteBytes(const std::string& dir, const std::string& name,
                       const std::vector<uint8_t>& bytes);

}  // namespace cvdeploy::testing
