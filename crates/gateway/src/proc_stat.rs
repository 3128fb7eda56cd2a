//! Reading `/proc/<pid>/stat` (Linux): a process's state and CPU time.
//! Elsewhere every answer is `None`.

/// The fields after the command name (state, ppid, ...): the name is in
/// parentheses and may hold spaces and `)`, so fields count from its last `)`.
pub fn fields_after_name(stat: &str) -> Option<Vec<&str>> {
    Some(stat.rsplit_once(')')?.1.split_whitespace().collect())
}

/// The stat line of process `pid` (`"self"` for this one).
pub fn read(pid: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

/// The process state letter (`R`, `S`, `Z` for a zombie, ...).
pub fn state(stat: &str) -> Option<&str> {
    fields_after_name(stat)?.first().copied()
}

/// User plus system CPU time, in clock ticks.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let fields = fields_after_name(stat)?;
    // utime and stime are fields 14 and 15 of the line, so 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str =
        "4242 (tokio rt) worker) S 1 4242 4242 0 -1 4194560 2331 0 0 0 1500 250 0 0 20 0 9 0 77 1000 200 0";

    #[test]
    fn fields_count_from_the_last_parenthesis_of_the_name() {
        assert_eq!(state(STAT), Some("S"));
        assert_eq!(cpu_ticks(STAT), Some(1750));
    }

    #[test]
    fn a_truncated_line_answers_nothing() {
        assert_eq!(cpu_ticks("4242 (truncated"), None);
        assert_eq!(cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(state("4242 (x)"), None);
    }

    #[test]
    fn this_process_reads_as_running_with_a_cpu_time() {
        let stat = read("self").unwrap();
        assert!(matches!(state(&stat), Some("R" | "S")), "{stat}");
        assert!(cpu_ticks(&stat).is_some(), "{stat}");
    }
}
