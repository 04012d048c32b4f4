//! The language of what people read (report.html, the owner and admin mail, the rule
//! catalogue's text): flag `--lang`, key `lang` at the top of the file. Machine-read
//! outputs (report.json, CSV column keys, rule ids, commands, logs) stay English.
use clap::Args;
use serde::Deserialize;

use super::problem::{pick, Names, Problem};
use crate::i18n::Lang;

#[derive(Debug, Clone, Default, Args)]
pub struct LangArgs {
    /// Language of the HTML report and the mail: en or ja [default: en].
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
}

/// The file's key (top level).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangFile {
    /// As `--lang`: `"en"` or `"ja"`.
    pub lang: Option<String>,
}

const LANG: Names = Names {
    flag: "--lang",
    key: "lang",
};

/// `--lang` over `lang` over English; an unknown language is a problem naming the
/// value and where it came from.
pub fn resolve(args: &LangArgs, file: &LangFile, out: &mut Vec<Problem>) -> Lang {
    pick(out, LANG, args.lang.as_deref(), file.lang.as_deref(), |v| {
        v.parse::<Lang>()
    })
    .or(Lang::En)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(flag: Option<&str>, key: Option<&str>) -> (Lang, Vec<(String, String)>) {
        let mut out = vec![];
        let lang = resolve(
            &LangArgs {
                lang: flag.map(str::to_string),
            },
            &LangFile {
                lang: key.map(str::to_string),
            },
            &mut out,
        );
        (lang, out.into_iter().map(|p| (p.key, p.reason)).collect())
    }

    #[test]
    fn the_flag_over_the_key_over_english() {
        assert_eq!(resolved(None, None), (Lang::En, vec![]));
        assert_eq!(resolved(None, Some("ja")), (Lang::Ja, vec![]));
        assert_eq!(resolved(Some("en"), Some("ja")), (Lang::En, vec![]));
        assert_eq!(resolved(Some("JA"), None), (Lang::Ja, vec![]));
    }

    #[test]
    fn an_unknown_language_names_the_value_and_its_origin() {
        let (_, p) = resolved(Some("fr"), None);
        assert_eq!(
            p,
            [(
                "--lang".to_string(),
                "unknown language `fr` (expected en or ja)".to_string()
            )]
        );
        // A wrong key is a problem under a good flag too (check-config says so).
        let (lang, p) = resolved(Some("ja"), Some("jp"));
        assert_eq!(lang, Lang::Ja);
        assert_eq!(
            p,
            [(
                "lang".to_string(),
                "unknown language `jp` (expected en or ja)".to_string()
            )]
        );
    }
}
