//! What the pipeline benchmark measures, read from outside the services:
//! CPU time of processes and of the machine from `/proc`, counters from the
//! services' Prometheus `/metrics` text, and percentiles.

use std::collections::BTreeMap;
use std::path::Path;

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one `/metrics` answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the text format; comments and lines it cannot read are skipped.
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(parse_sample)
            .collect();
        Metrics { samples }
    }

    /// The sum of the samples named `name` whose labels include every
    /// `(label, value)` of `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.matching(name, filter).map(|s| s.value).sum()
    }

    /// The samples named `name`, summed per value of `label`.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for sample in self.matching(name, &[]) {
            if let Some(key) = sample.labels.get(label) {
                *out.entry(key.clone()).or_insert(0.0) += sample.value;
            }
        }
        out
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |sample| {
            sample.name == name
                && filter
                    .iter()
                    .all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..].find('}')? + open;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let (name, rest) = line.split_once(char::is_whitespace)?;
            (name, BTreeMap::new(), rest)
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.trim().to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y"`; values without `,`, `}` or escaped quotes (all the
/// services' label values are camera ids and reason words).
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
        labels.insert(key.trim().to_string(), value.to_string());
    }
    Some(labels)
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `Z` (exited, not yet reaped)...
    pub state: char,
    pub ppid: u32,
    /// utime + stime of every thread, in clock ticks.
    pub cpu_ticks: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from its last `)`.
pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after the name: state(3) ppid(4) ... utime(14) stime(15)
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ProcStat {
        state,
        ppid,
        cpu_ticks: utime + stime,
    })
}

/// `/proc/<pid>/stat` of a running process.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A direct child of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildProcess {
    pub pid: u32,
    /// The kernel's name for it: the program's file name, cut to 15 bytes.
    pub comm: String,
    /// The command line, arguments separated by spaces.
    pub cmdline: String,
    pub stat: ProcStat,
}

/// The direct children of this process, from `/proc`.
pub fn children() -> Vec<ChildProcess> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Some(stat) = proc_stat(pid) else { continue };
        if stat.ppid != me {
            continue;
        }
        let read = |file: &str| std::fs::read(Path::new("/proc").join(pid.to_string()).join(file));
        let comm = read("comm")
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
            .unwrap_or_default();
        let cmdline = read("cmdline")
            .map(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .split('\0')
                    .filter(|arg| !arg.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push(ChildProcess {
            pid,
            comm,
            cmdline,
            stat,
        });
    }
    out.sort_by_key(|child| child.pid);
    out
}

/// The kernel's name of a program: its file name cut to 15 bytes.
pub fn comm_of(program: &str) -> &str {
    let name = program.rsplit('/').next().unwrap_or(program);
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Clock ticks per second of the times in `/proc` (`getconf CLK_TCK`; 100
/// on every Linux this runs on, used when getconf is missing).
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .filter(|ticks: &f64| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// The whole machine's CPU time from the first line of `/proc/stat`, in
/// clock ticks summed over all cores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineCpu {
    pub busy: u64,
    /// Of `busy`: hardware and software interrupts (irq, softirq), which
    /// the kernel charges to no process (loopback network traffic is
    /// largely softirq).
    pub interrupts: u64,
    pub total: u64,
}

impl MachineCpu {
    pub fn read() -> Option<MachineCpu> {
        parse_machine_cpu(&std::fs::read_to_string("/proc/stat").ok()?)
    }
}

/// `cpu  user nice system idle iowait irq softirq steal ...`: idle and
/// iowait are not busy; guest time is already inside user.
pub fn parse_machine_cpu(text: &str) -> Option<MachineCpu> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    if values.len() < 5 {
        return None;
    }
    let total: u64 = values.iter().sum();
    let idle = values[3] + values[4];
    let interrupts = values.get(5).copied().unwrap_or(0) + values.get(6).copied().unwrap_or(0);
    Some(MachineCpu {
        busy: total - idle,
        interrupts,
        total,
    })
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Cores, CPU model and memory, e.g. "2 cores, AMD EPYC 7B13, 24 GiB".
pub fn machine_description() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores ({model}), {memory_gib:.0} GiB RAM")
}

/// Nearest-rank percentile of sorted values (always a measured value);
/// `None` when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP anpr_ingest_frames_decoded Pictures decoded per camera
# TYPE anpr_ingest_frames_decoded counter
anpr_ingest_frames_decoded_total{camera=\"cam-01\"} 1500
anpr_ingest_frames_decoded_total{camera=\"cam-02\"} 1499
anpr_ingest_frames_dropped_total{camera=\"cam-01\",reason=\"overload\"} 3
anpr_ingest_frames_dropped_total{reason=\"before_keyframe\",camera=\"cam-02\"} 2
anpr_ingest_workers 2
anpr_recognizer_queue_depth 1.5e0
# EOF
";

    #[test]
    fn metrics_are_summed_by_name_and_labels() {
        let metrics = Metrics::parse(METRICS);
        assert_eq!(metrics.sum("anpr_ingest_frames_decoded_total", &[]), 2999.0);
        assert_eq!(
            metrics.sum("anpr_ingest_frames_dropped_total", &[("camera", "cam-02")]),
            2.0
        );
        assert_eq!(metrics.sum("anpr_ingest_workers", &[]), 2.0);
        assert_eq!(metrics.sum("anpr_recognizer_queue_depth", &[]), 1.5);
        let reasons = metrics.by_label("anpr_ingest_frames_dropped_total", "reason");
        assert_eq!(reasons.get("overload"), Some(&3.0));
        assert_eq!(reasons.get("before_keyframe"), Some(&2.0));
    }

    #[test]
    fn proc_stat_is_read_after_the_command_name() {
        let text = "4242 (tokio-rt (x) 1) S 17 4242 17 0 -1 4194560 300 0 0 0 \
                    250 50 0 0 20 0 9 0 1000 100000 200 18446744073709551615";
        assert_eq!(
            parse_proc_stat(text),
            Some(ProcStat {
                state: 'S',
                ppid: 17,
                cpu_ticks: 300
            })
        );
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    #[test]
    fn machine_cpu_counts_idle_and_iowait_as_not_busy() {
        let text = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n";
        assert_eq!(
            parse_machine_cpu(text),
            Some(MachineCpu {
                busy: 160,
                interrupts: 5,
                total: 980
            })
        );
    }

    #[test]
    fn program_names_are_cut_like_the_kernel_does() {
        assert_eq!(comm_of("/tmp/bin/anpr-recognizer-extra"), "anpr-recognizer");
        assert_eq!(comm_of("nats-server"), "nats-server");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(10.0));
        assert_eq!(percentile(&values, 95.0), Some(19.0));
        assert_eq!(percentile(&values, 100.0), Some(20.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
