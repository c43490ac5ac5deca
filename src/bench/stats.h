// SPDX-License-Identifier: Apache-2.0
// Forwarding header: the statistics are public API now (cvdeploy/stats.h, implemented in
// src/core). Kept only for src/cli/cmd_compare.cpp until the model-tools work moves it to the
// public headers; delete it then.
#pragma once

#include "cvdeploy/stats.h"
