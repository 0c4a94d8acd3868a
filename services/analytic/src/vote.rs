//! Per-character voting over the reads of one track.
//!
//! Reads are folded into tallies as they arrive instead of being kept, so a
//! plate parked in view for hours costs the same memory as one driving by.
//! The vote goes in two steps: first the text length (reads of different
//! lengths cannot be compared position by position), then, among the reads
//! of the winning length, each position on its own. Every vote is weighted by
//! the per-character confidence, so one sharp read outweighs a blurred one.
//!
//! Format rules are applied after voting, never before: a rule must not throw
//! away reads whose characters would have helped the vote.

use regex::Regex;

use crate::text::{fit_to_formats, NormalisedText};

/// Distinct texts remembered per track as candidates; a noisy track does not
/// grow without bound (later texts still count in the per-position vote).
const MAX_TEXTS: usize = 32;
/// Alternatives reported with an event.
pub const MAX_CANDIDATES: usize = 5;

#[derive(Debug, Clone, Default)]
struct LengthTally {
    /// Sum of the mean character confidence of each read of this length.
    weight: f32,
    reads: u32,
    /// Order of the first read of this length (earlier wins ties).
    first: u32,
    /// Per position: every character seen there with its summed confidence,
    /// in the order first seen.
    positions: Vec<Vec<(char, f32)>>,
}

#[derive(Debug, Clone)]
struct TextTally {
    chars: Vec<char>,
    first: u32,
}

/// The votes of one track.
#[derive(Debug, Clone, Default)]
pub struct Ballot {
    lengths: Vec<(usize, LengthTally)>,
    texts: Vec<TextTally>,
    reads: u32,
}

/// A reading of the plate with its voted confidence in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub text: String,
    pub confidence: f32,
}

/// Outcome of a vote.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Best text after format rules.
    pub plate_text: String,
    /// Best text of the vote, before format rules.
    pub raw_text: String,
    /// Voted confidence of `plate_text`.
    pub confidence: f32,
    /// The other readings, best first, without `plate_text`.
    pub candidates: Vec<Candidate>,
}

impl Ballot {
    /// Number of reads voted so far.
    pub fn reads(&self) -> u32 {
        self.reads
    }

    /// Adds one read's vote.
    pub fn add(&mut self, read: &NormalisedText) {
        let order = self.reads;
        self.reads += 1;
        let len = read.chars.len();
        let weight = read.confidences.iter().sum::<f32>() / len.max(1) as f32;
        let tally = match self.lengths.iter().position(|(l, _)| *l == len) {
            Some(index) => &mut self.lengths[index].1,
            None => {
                self.lengths.push((
                    len,
                    LengthTally {
                        first: order,
                        positions: vec![Vec::new(); len],
                        ..LengthTally::default()
                    },
                ));
                let last = self.lengths.len() - 1;
                &mut self.lengths[last].1
            }
        };
        tally.weight += weight;
        tally.reads += 1;
        for (slot, (&c, &confidence)) in tally
            .positions
            .iter_mut()
            .zip(read.chars.iter().zip(&read.confidences))
        {
            match slot.iter_mut().find(|(seen, _)| *seen == c) {
                Some((_, sum)) => *sum += confidence,
                None => slot.push((c, confidence)),
            }
        }
        if self.texts.len() < MAX_TEXTS && !self.texts.iter().any(|t| t.chars == read.chars) {
            self.texts.push(TextTally {
                chars: read.chars.clone(),
                first: order,
            });
        }
    }

    /// The voted text before format rules; `None` before the first read.
    pub fn voted_chars(&self) -> Option<Vec<char>> {
        let (_, tally) = self.winning_length()?;
        Some(
            tally
                .positions
                .iter()
                .map(|slot| {
                    // Highest summed confidence; the first seen wins a tie.
                    let mut best: Option<(char, f32)> = None;
                    for &(c, sum) in slot {
                        if best.is_none_or(|(_, top)| sum > top) {
                            best = Some((c, sum));
                        }
                    }
                    best.map_or('?', |(c, _)| c)
                })
                .collect(),
        )
    }

    fn winning_length(&self) -> Option<&(usize, LengthTally)> {
        let mut best: Option<&(usize, LengthTally)> = None;
        for entry in &self.lengths {
            let better = match best {
                None => true,
                Some((_, top)) => {
                    let tally = &entry.1;
                    tally.weight > top.weight
                        || (tally.weight == top.weight
                            && (tally.reads > top.reads
                                || (tally.reads == top.reads && tally.first < top.first)))
                }
            };
            if better {
                best = Some(entry);
            }
        }
        best
    }

    /// Voted confidence of `text`: the share of all reads' confidence that
    /// supports each of its characters, averaged over its positions. Equals
    /// the reads' confidence when every read agrees.
    fn score(&self, text: &[char]) -> f32 {
        if self.reads == 0 || text.is_empty() {
            return 0.0;
        }
        let Some((_, tally)) = self.lengths.iter().find(|(l, _)| *l == text.len()) else {
            return 0.0;
        };
        let support: f32 = tally
            .positions
            .iter()
            .zip(text)
            .map(|(slot, c)| {
                slot.iter()
                    .find(|(seen, _)| seen == c)
                    .map_or(0.0, |(_, sum)| *sum)
            })
            .sum();
        (support / (text.len() as f32 * self.reads as f32)).clamp(0.0, 1.0)
    }

    /// The vote: voted text first, then the distinct texts read, by voted
    /// confidence. With `formats` given, the plate text is the first of
    /// these that matches a format; when none does, the voted text.
    pub fn verdict(&self, formats: &[Regex]) -> Option<Verdict> {
        let voted = self.voted_chars()?;
        let mut others: Vec<(Vec<char>, f32, u32)> = self
            .texts
            .iter()
            .filter(|t| t.chars != voted)
            .map(|t| (t.chars.clone(), self.score(&t.chars), t.first))
            .collect();
        others.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
        let mut ranked: Vec<Candidate> = Vec::with_capacity(others.len() + 1);
        ranked.push(Candidate {
            text: voted.iter().collect(),
            confidence: self.score(&voted),
        });
        ranked.extend(others.into_iter().map(|(chars, confidence, _)| Candidate {
            text: chars.iter().collect(),
            confidence,
        }));

        let raw_text = ranked[0].text.clone();
        let plate = if formats.is_empty() {
            ranked.remove(0)
        } else if let Some(fits) = ranked
            .iter()
            .position(|c| formats.iter().any(|f| f.is_match(&c.text)))
        {
            ranked.remove(fits)
        } else if let Some((index, fitted)) = ranked
            .iter()
            .enumerate()
            .find_map(|(i, c)| Some((i, fit_to_formats(&c.text, formats)?)))
        {
            // No text read fits a format, but one does once look-alike
            // characters are read as the kind the format wants there. The
            // text as read stays among the candidates.
            let read = ranked[index].clone();
            Candidate {
                text: fitted,
                confidence: read.confidence,
            }
        } else {
            ranked.remove(0)
        };
        ranked.truncate(MAX_CANDIDATES);
        Some(Verdict {
            plate_text: plate.text,
            raw_text,
            confidence: plate.confidence,
            candidates: ranked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::normalise;

    fn read(text: &str, confidence: f32) -> NormalisedText {
        let confidences = vec![confidence; text.chars().count()];
        normalise(text, &confidences, confidence).expect("valid text")
    }

    fn ballot(reads: &[(&str, f32)]) -> Ballot {
        let mut ballot = Ballot::default();
        for (text, confidence) in reads {
            ballot.add(&read(text, *confidence));
        }
        ballot
    }

    #[test]
    fn votes_per_character_across_reads() {
        // No read is right on its own; the vote per position is.
        let verdict = ballot(&[("ABC1Z3", 0.8), ("A8C123", 0.8), ("ABC12E", 0.8)])
            .verdict(&[])
            .expect("verdict");
        assert_eq!(verdict.plate_text, "ABC123");
        assert_eq!(verdict.raw_text, "ABC123");
        assert!(verdict.confidence > 0.6 && verdict.confidence < 0.8);
        let texts: Vec<_> = verdict.candidates.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts.len(), 3);
        assert!(!texts.contains(&"ABC123"));
    }

    #[test]
    fn character_confidence_weighs_votes() {
        let mut ballot = Ballot::default();
        ballot.add(&normalise("AB0", &[0.9, 0.9, 0.2], 0.7).expect("text"));
        ballot.add(&normalise("AB0", &[0.9, 0.9, 0.2], 0.7).expect("text"));
        ballot.add(&normalise("ABO", &[0.9, 0.9, 0.95], 0.9).expect("text"));
        assert_eq!(ballot.verdict(&[]).expect("verdict").plate_text, "ABO");
    }

    #[test]
    fn length_is_voted_first() {
        let verdict = ballot(&[("ABC123", 0.9), ("ABC1234", 0.6), ("ABC123", 0.9)])
            .verdict(&[])
            .expect("verdict");
        assert_eq!(verdict.plate_text, "ABC123");
        assert_eq!(verdict.candidates[0].text, "ABC1234");
        assert!(verdict.candidates[0].confidence < verdict.confidence);
    }

    #[test]
    fn all_agreeing_reads_give_their_confidence() {
        let verdict = ballot(&[("XY12", 0.9), ("XY12", 0.9)])
            .verdict(&[])
            .expect("verdict");
        assert!((verdict.confidence - 0.9).abs() < 1e-5);
        assert!(verdict.candidates.is_empty());
        assert_eq!(Ballot::default().verdict(&[]), None);
    }

    #[test]
    fn format_rules_apply_after_voting() {
        let formats = [Regex::new("^[A-Z]{3}[0-9]{3}$").expect("regex")];
        // The vote says ABC12O (O for 0), which fits no format; the next
        // candidate in vote order that fits is taken, raw_text keeps the vote.
        let verdict = ballot(&[("ABC12O", 0.9), ("ABC12O", 0.8), ("ABC120", 0.7)])
            .verdict(&formats)
            .expect("verdict");
        assert_eq!(verdict.plate_text, "ABC120");
        assert_eq!(verdict.raw_text, "ABC12O");
        assert_eq!(verdict.candidates[0].text, "ABC12O");

        // Nothing fits: the voted text is reported.
        let verdict = ballot(&[("ZZ", 0.9)]).verdict(&formats).expect("verdict");
        assert_eq!(verdict.plate_text, "ZZ");
        assert_eq!(verdict.raw_text, "ZZ");

        // No read fits, but the vote does once its look-alikes are read as
        // the format wants them at their positions; the read stays a candidate.
        let verdict = ballot(&[("A8C1O3", 0.9), ("A8C1O3", 0.8)])
            .verdict(&formats)
            .expect("verdict");
        assert_eq!(verdict.plate_text, "ABC103");
        assert_eq!(verdict.raw_text, "A8C1O3");
        assert_eq!(verdict.candidates[0].text, "A8C1O3");
    }
}
