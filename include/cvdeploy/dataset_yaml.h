// SPDX-License-Identifier: Apache-2.0
// Ultralytics dataset YAML files (`yolo val data=coco128.yaml`): the images and labels of one
// split, read as LoadYoloDataset reads a dataset directory (cvdeploy/eval.h).
#pragma once

#include <string>

#include "cvdeploy/eval.h"

namespace cvdeploy {

// An Ultralytics dataset YAML (`path`, `train`, `val`, `test`, `names` as a list or an
// {id: name} map, or only `nc`: names "class_0", ...): the images of `split` ("train", "val" or
// "test"), whose entries are directories (searched recursively, sorted), image list files
// (.txt: "./x" relative to the list, other relative lines to the root) or images; each image's
// labels are at LabelPathForImage. `path` is the root, relative to the YAML's directory, else to
// the working directory; without it (or when it names no directory, with a warning in
// Dataset::warnings) the YAML's directory. An entry "../x" that does not exist is read as "x",
// as Ultralytics does. Labels are read and checked as LoadYoloDataset does (a pose line of 5
// values is a box alone). Throws Error(kBadInput) "FILE.yaml: ..." for an unreadable or
// malformed file, a missing split (naming those the file has), an entry that does not exist or
// a split without images, and Error(kInvalidArgument) for another split name.
Dataset LoadDatasetYaml(const std::string& yaml_path, const std::string& split = "val",
                        int num_keypoints = 0, int num_classes = 0);

// True for a path ending in .yaml or .yml that is not a directory.
bool IsDatasetYaml(const std::string& path);

// Ultralytics' img2label_paths: the last "/images/" of the path becomes "/labels/" and the
// extension ".txt" ("d/images/val/x.jpg" -> "d/labels/val/x.txt").
std::string LabelPathForImage(const std::string& image_path);

}  // namespace cvdeploy
