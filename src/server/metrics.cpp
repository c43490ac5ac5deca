// SPDX-License-Identifier: Apache-2.0
// Prometheus metrics: lock-free metric values, the registry and its text exposition, and the
// process collector (Linux /proc).
#include "server/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace cvdeploy::server {

// One labelled series of a family; exactly one of the three values is set, per the family type.
struct Registry::Series {
  Labels labels;  // as first given: rendered in this order
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct Registry::Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<double> buckets;                  // histograms only, validated
  std::vector<std::unique_ptr<Series>> series;  // creation order
  std::map<Labels, Series*> by_labels;          // key: labels sorted by name
};

namespace {

bool IsNameChar(char c, bool allow_colon, bool allow_digit) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (allow_colon && c == ':') || (allow_digit && c >= '0' && c <= '9');
}

bool IsValidName(std::string_view name, bool allow_colon) {
  if (name.empty() || !IsNameChar(name[0], allow_colon, false)) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return IsNameChar(c, allow_colon, true); });
}

void ValidateMetricName(const std::string& name) {
  if (!IsValidName(name, true)) throw std::invalid_argument("invalid metric name '" + name + "'");
}

void ValidateLabels(const Labels& labels, bool histogram) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& key = labels[i].first;
    if (!IsValidName(key, false) || key.starts_with("__")) {
      throw std::invalid_argument("invalid label name '" + key + "'");
    }
    if (histogram && key == "le") {
      throw std::invalid_argument("label name 'le' is reserved in histograms");
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].first == key) throw std::invalid_argument("duplicate label '" + key + "'");
    }
  }
}

// Series identity does not depend on the order the caller lists the labels in.
Labels SortedLabels(Labels labels) {
  std::sort(labels.begin(), labels.end());
  return labels;
}

std::vector<double> ValidatedBounds(std::vector<double> bounds) {
  if (!bounds.empty() && bounds.back() == std::numeric_limits<double>::infinity()) {
    bounds.pop_back();
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument("histogram bounds must be finite (+Inf is implicit)");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("histogram bounds must be strictly ascending");
    }
  }
  return bounds;
}

void AppendEscaped(std::string& out, std::string_view text, bool escape_quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// name{k="v",...[,le="bound"]} value\n; the braces are omitted when there is no label.
void AppendSample(std::string& out, const std::string& name, std::string_view suffix,
                  const Labels& labels, const std::string* le, const std::string& value) {
  out += name;
  out += suffix;
  if (!labels.empty() || le != nullptr) {
    out += '{';
    bool first = true;
    for (const auto& [key, label_value] : labels) {
      if (!first) out += ',';
      first = false;
      out += key;
      out += "=\"";
      AppendEscaped(out, label_value, true);
      out += '"';
    }
    if (le != nullptr) {
      if (!first) out += ',';
      out += "le=\"";
      out += *le;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

bool LabelsContain(const Labels& labels, const Labels& match) {
  return std::all_of(match.begin(), match.end(), [&](const auto& wanted) {
    return std::find(labels.begin(), labels.end(), wanted) != labels.end();
  });
}

}  // namespace

void Counter::Inc(double v) {
  if (!(v >= 0)) throw std::invalid_argument("counter increment must be >= 0");
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(ValidatedBounds(std::move(bounds))),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  // lower_bound finds the first bound >= v, i.e. v <= bound ("le"). NaN compares false with
  // every bound and would land in the first bucket, so send it to +Inf explicitly.
  const size_t bucket =
      std::isnan(v) ? bounds_.size()
                    : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                          bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::Count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) total += counts_[i].load(std::memory_order_relaxed);
  return total;
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> cumulative(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    cumulative[i] = total;
  }
  return cumulative;
}

Registry::Registry() = default;
Registry::~Registry() = default;

const char* Registry::TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

Registry::Family& Registry::FamilyFor(const std::string& name, const std::string& help, Type type,
                                      const std::vector<double>* buckets) {
  if (auto it = family_by_name_.find(name); it != family_by_name_.end()) {
    Family& family = *it->second;
    if (family.type != type) {
      throw std::logic_error("metric '" + name + "' is a " + TypeName(family.type) + ", not a " +
                             TypeName(type));
    }
    if (buckets != nullptr && ValidatedBounds(*buckets) != family.buckets) {
      throw std::logic_error("histogram '" + name + "' was registered with other buckets");
    }
    return family;
  }
  ValidateMetricName(name);
  auto family = std::make_unique<Family>();
  family->name = name;
  family->help = help;
  family->type = type;
  if (buckets != nullptr) family->buckets = ValidatedBounds(*buckets);
  Family& result = *family;
  families_.push_back(std::move(family));
  family_by_name_.emplace(name, &result);
  return result;
}

Registry::Series& Registry::SeriesFor(Family& family, const Labels& labels) {
  Labels key = SortedLabels(labels);
  if (auto it = family.by_labels.find(key); it != family.by_labels.end()) return *it->second;
  auto series = std::make_unique<Series>();
  series->labels = labels;
  switch (family.type) {
    case Type::kCounter:
      series->counter = std::make_unique<Counter>();
      break;
    case Type::kGauge:
      series->gauge = std::make_unique<Gauge>();
      break;
    case Type::kHistogram:
      series->histogram = std::make_unique<Histogram>(family.buckets);
      break;
  }
  Series& result = *series;
  family.series.push_back(std::move(series));
  family.by_labels.emplace(std::move(key), &result);
  return result;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  ValidateLabels(labels, false);  // before FamilyFor, so bad labels leave no empty family behind
  std::lock_guard lock(mutex_);
  return *SeriesFor(FamilyFor(name, help, Type::kCounter, nullptr), labels).counter;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  ValidateLabels(labels, false);
  std::lock_guard lock(mutex_);
  return *SeriesFor(FamilyFor(name, help, Type::kGauge, nullptr), labels).gauge;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const Labels& labels, const std::vector<double>& buckets) {
  ValidateLabels(labels, true);
  std::lock_guard lock(mutex_);
  return *SeriesFor(FamilyFor(name, help, Type::kHistogram, &buckets), labels).histogram;
}

size_t Registry::RemoveSeries(const Labels& match) {
  if (match.empty()) throw std::invalid_argument("RemoveSeries needs at least one label to match");
  std::lock_guard lock(mutex_);
  size_t removed = 0;
  for (auto& family : families_) removed += RemoveFrom(*family, match);
  return removed;
}

size_t Registry::RemoveSeries(const Labels& match, const std::vector<std::string>& families) {
  if (match.empty()) throw std::invalid_argument("RemoveSeries needs at least one label to match");
  std::lock_guard lock(mutex_);
  size_t removed = 0;
  for (const auto& name : std::set<std::string>(families.begin(), families.end())) {
    auto it = family_by_name_.find(name);
    if (it != family_by_name_.end()) removed += RemoveFrom(*it->second, match);
  }
  return removed;
}

size_t Registry::RemoveFrom(Family& family, const Labels& match) {
  return std::erase_if(family.series, [&](const std::unique_ptr<Series>& series) {
    if (!LabelsContain(series->labels, match)) return false;
    family.by_labels.erase(SortedLabels(series->labels));
    return true;
  });
}

void Registry::AddCollector(std::function<void(Registry&)> collect) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() {
  std::vector<std::function<void(Registry&)>> collectors;
  {
    std::lock_guard lock(mutex_);
    collectors = collectors_;
  }
  // Outside the lock: collectors call Get*.
  for (const auto& collect : collectors) collect(*this);

  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& family : families_) {
    if (!family->help.empty()) {
      out += "# HELP ";
      out += family->name;
      out += ' ';
      AppendEscaped(out, family->help, false);
      out += '\n';
    }
    out += "# TYPE ";
    out += family->name;
    out += ' ';
    out += TypeName(family->type);
    out += '\n';
    for (const auto& series : family->series) {
      switch (family->type) {
        case Type::kCounter:
          AppendSample(out, family->name, "", series->labels, nullptr,
                       FormatMetricValue(series->counter->Value()));
          break;
        case Type::kGauge:
          AppendSample(out, family->name, "", series->labels, nullptr,
                       FormatMetricValue(series->gauge->Value()));
          break;
        case Type::kHistogram: {
          const Histogram& histogram = *series->histogram;
          // One snapshot of the counts, so the +Inf bucket and _count agree.
          const std::vector<uint64_t> cumulative = histogram.CumulativeCounts();
          for (size_t i = 0; i < cumulative.size(); ++i) {
            const std::string le = i < family->buckets.size()
                                       ? FormatMetricValue(family->buckets[i])
                                       : std::string("+Inf");
            AppendSample(out, family->name, "_bucket", series->labels, &le,
                         std::to_string(cumulative[i]));
          }
          AppendSample(out, family->name, "_sum", series->labels, nullptr,
                       FormatMetricValue(histogram.Sum()));
          AppendSample(out, family->name, "_count", series->labels, nullptr,
                       std::to_string(cumulative.back()));
          break;
        }
      }
    }
  }
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return "0";  // also -0
  char buffer[64];
  constexpr double kTwoTo53 = 9007199254740992.0;
  // Shortest "fixed" of an integer has no decimals; the default shortest form would write
  // 1000000 as 1e+06, and 0.0001 (a latency bucket bound in seconds) as 1e-04. Like Go's
  // %g, which Prometheus' own clients use for `le`, values from 1e-4 up stay in fixed form.
  const bool fixed = std::fabs(v) < kTwoTo53 && (std::trunc(v) == v || std::fabs(v) >= 1e-4);
  const auto result = fixed ? std::to_chars(buffer, std::end(buffer), v, std::chars_format::fixed)
                            : std::to_chars(buffer, std::end(buffer), v);
  return std::string(buffer, result.ptr);
}

std::vector<double> LatencyBucketsSeconds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

namespace {

std::optional<double> ReadResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("VmRSS:")) continue;
    std::istringstream fields(line.substr(6));
    double kib = 0;
    std::string unit;
    if (fields >> kib >> unit && unit == "kB") return kib * 1024;
    return std::nullopt;
  }
  return std::nullopt;
}

// Fields of /proc/self/stat from field 3 (state) on, so that fields()[n - 3] is field n of
// proc(5). The command name (field 2) may contain spaces and ')', hence the last ')'.
std::optional<std::vector<std::string>> ReadStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = content.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(content.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  if (fields.size() < 20) return std::nullopt;
  return fields;
}

double ClockTicksPerSecond() {
  const long ticks = sysconf(_SC_CLK_TCK);
  return ticks > 0 ? static_cast<double>(ticks) : 100.0;
}

std::optional<double> ReadCpuSeconds() {
  const auto fields = ReadStatFields();
  if (!fields) return std::nullopt;
  // utime is field 14, stime field 15, both in clock ticks.
  const double ticks = std::stod((*fields)[14 - 3]) + std::stod((*fields)[15 - 3]);
  return ticks / ClockTicksPerSecond();
}

std::optional<double> ReadStartTimeSeconds() {
  const auto fields = ReadStatFields();
  if (!fields) return std::nullopt;
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("btime ")) continue;
    // starttime (field 22) is in clock ticks since boot; btime is the boot time in Unix seconds.
    return std::stod(line.substr(6)) + std::stod((*fields)[22 - 3]) / ClockTicksPerSecond();
  }
  return std::nullopt;
}

constexpr char kRssName[] = "cvdeploy_process_resident_memory_bytes";
constexpr char kRssHelp[] = "Resident memory size in bytes.";
constexpr char kCpuName[] = "cvdeploy_process_cpu_seconds_total";
constexpr char kCpuHelp[] = "Total user and system CPU time spent in seconds.";

}  // namespace

void AddProcessMetrics(Registry& registry) {
  // Register all three now so that they render in this order whatever else is registered later.
  registry.GetGauge(kRssName, kRssHelp);
  registry.GetCounter(kCpuName, kCpuHelp);
  Gauge& start = registry.GetGauge("cvdeploy_process_start_time_seconds",
                                   "Start time of the process since the Unix epoch in seconds.");
  try {
    if (const auto seconds = ReadStartTimeSeconds()) start.Set(*seconds);
  } catch (const std::exception&) {
    // Unparsable /proc: leave it at 0 rather than fail server start-up.
  }
  // Looks the series up at every scrape rather than capturing references, so it stays correct
  // whatever RemoveSeries does.
  registry.AddCollector([](Registry& r) {
    try {
      if (const auto rss = ReadResidentBytes()) r.GetGauge(kRssName, kRssHelp).Set(*rss);
      if (const auto cpu = ReadCpuSeconds()) r.GetCounter(kCpuName, kCpuHelp).SetCollected(*cpu);
    } catch (const std::exception&) {
      // std::stod on an unexpected /proc format: keep the last values; a scrape never fails.
    }
  });
}

}  // namespace cvdeploy::server
