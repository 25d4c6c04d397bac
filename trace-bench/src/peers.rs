//! The peer crates, each driven the way its own documentation and benchmarks drive it, as one
//! local author replaying a sequential trace.
//!
//! Trace positions count code points. No trace holds a character above U+FFFF, so UTF-16
//! offsets (yrs) are the same numbers.

use std::ops::Range;

use anyhow::{Context, Result};
use automerge::{
    AutoCommit, ObjId, ObjType, ROOT, ReadDoc, TextEncoding, transaction::Transactable,
};
use diamond_types::list::{ListCRDT, encoding::EncodeOptions};
use jumprope::{JumpRope, JumpRopeBuf};
use loro::{ExportMode, LoroDoc, LoroText};
use yrs::{
    ClientID, Doc, GetString, OffsetKind, Options, ReadTxn, StateVector, Text, TextRef, Transact,
};

use crate::{
    edits::Edit,
    sequential::{Editor, Encoded},
};

/// diamond-types' `ListCRDT` (an oplog plus a branch at its tip), edited as one agent.
pub(crate) struct DiamondTypes;

impl Editor for DiamondTypes {
    const NAME: &'static str = "diamond-types";
    const HOW: &'static str =
        "ListCRDT::delete_without_content then ListCRDT::insert per patch, one agent";
    type Doc = ListCRDT;

    fn replay(edits: &[Edit<'_>]) -> Result<ListCRDT> {
        let mut doc = ListCRDT::new();
        let agent = doc.get_or_create_agent_id("author");
        for edit in edits {
            if edit.delete > 0 {
                // Deleted text is not kept in the oplog, as in diamond-types' own trace benchmarks.
                doc.delete_without_content(agent, edit.pos..edit.pos + edit.delete);
            }
            if !edit.insert.is_empty() {
                doc.insert(agent, edit.pos, edit.insert);
            }
        }
        Ok(doc)
    }

    fn text(doc: &ListCRDT) -> Result<String> {
        Ok(doc.branch.content().to_string())
    }

    fn encode(doc: &mut ListCRDT) -> Result<Option<Encoded>> {
        let bytes = doc.oplog.encode(EncodeOptions::default());
        Ok(Some(Encoded { what: "oplog.encode(EncodeOptions::default())", bytes: bytes.len() }))
    }
}

/// jumprope's `JumpRopeBuf`: a plain rope (no CRDT) that buffers adjacent edits, the fastest
/// way jumprope offers to apply a stream of keystrokes.
pub(crate) struct Jumprope;

impl Editor for Jumprope {
    const NAME: &'static str = "jumprope";
    const HOW: &'static str =
        "JumpRopeBuf::remove then JumpRopeBuf::insert per patch (a rope, no CRDT)";
    type Doc = JumpRopeBuf;

    fn replay(edits: &[Edit<'_>]) -> Result<JumpRopeBuf> {
        Ok(replay_rope(JumpRopeBuf::new(), edits, JumpRopeBuf::remove, JumpRopeBuf::insert))
    }

    fn text(rope: &JumpRopeBuf) -> Result<String> {
        Ok(rope.to_string())
    }

    fn encode(_: &mut JumpRopeBuf) -> Result<Option<Encoded>> {
        Ok(None)
    }
}

/// jumprope's unbuffered `JumpRope`: every edit goes into the skip list at once. The issue's
/// "plain rope" figure is this one; the buffered row above is the faster of the two.
pub(crate) struct JumpropePlain;

impl Editor for JumpropePlain {
    const NAME: &'static str = "jumprope-plain";
    const HOW: &'static str = "JumpRope::remove then JumpRope::insert per patch (unbuffered)";
    type Doc = JumpRope;

    fn replay(edits: &[Edit<'_>]) -> Result<JumpRope> {
        Ok(replay_rope(JumpRope::new(), edits, JumpRope::remove, JumpRope::insert))
    }

    fn text(rope: &JumpRope) -> Result<String> {
        Ok(rope.to_string())
    }

    fn encode(_: &mut JumpRope) -> Result<Option<Encoded>> {
        Ok(None)
    }
}

/// Applies `edits` to a rope through its `remove` and `insert`: the two jumprope flavours
/// share no trait, but take edits the same way.
fn replay_rope<R>(
    mut rope: R,
    edits: &[Edit<'_>],
    remove: fn(&mut R, Range<usize>),
    insert: fn(&mut R, usize, &str),
) -> R {
    for edit in edits {
        if edit.delete > 0 {
            remove(&mut rope, edit.pos..edit.pos + edit.delete);
        }
        if !edit.insert.is_empty() {
            insert(&mut rope, edit.pos, edit.insert);
        }
    }
    rope
}

/// Loro's `LoroDoc` with one text container, in its default auto-commit mode.
pub(crate) struct Loro;

impl Editor for Loro {
    const NAME: &'static str = "loro";
    const HOW: &'static str = "LoroText::delete then LoroText::insert per patch (Unicode positions), one commit at the end";
    type Doc = LoroDoc;

    fn replay(edits: &[Edit<'_>]) -> Result<LoroDoc> {
        let doc = LoroDoc::new();
        doc.set_peer_id(1)?;
        let text = doc.get_text("text");
        for edit in edits {
            loro_edit(&text, edit)?;
        }
        doc.commit();
        Ok(doc)
    }

    fn text(doc: &LoroDoc) -> Result<String> {
        Ok(doc.get_text("text").to_string())
    }

    fn encode(doc: &mut LoroDoc) -> Result<Option<Encoded>> {
        let bytes = doc.export(ExportMode::Snapshot)?;
        Ok(Some(Encoded { what: "export(ExportMode::Snapshot)", bytes: bytes.len() }))
    }
}

fn loro_edit(text: &LoroText, edit: &Edit<'_>) -> Result<()> {
    if edit.delete > 0 {
        text.delete(edit.pos, edit.delete)?;
    }
    if !edit.insert.is_empty() {
        text.insert(edit.pos, edit.insert)?;
    }
    Ok(())
}

/// Automerge's `AutoCommit` with one text object, counting positions in code points.
pub(crate) struct Automerge;

impl Editor for Automerge {
    const NAME: &'static str = "automerge";
    const HOW: &'static str =
        "AutoCommit::splice_text per patch (TextEncoding::UnicodeCodePoint), one commit at the end";
    const DEFAULT_RUNS: usize = 3;
    type Doc = (AutoCommit, ObjId);

    fn replay(edits: &[Edit<'_>]) -> Result<(AutoCommit, ObjId)> {
        // Explicit, although it is the default off wasm: trace positions are code points.
        let mut doc = AutoCommit::new_with_encoding(TextEncoding::UnicodeCodePoint);
        let text = doc.put_object(ROOT, "text", ObjType::Text)?;
        for edit in edits {
            let delete = isize::try_from(edit.delete).context("delete count")?;
            doc.splice_text(&text, edit.pos, delete, edit.insert)?;
        }
        doc.commit();
        Ok((doc, text))
    }

    fn text((doc, text): &(AutoCommit, ObjId)) -> Result<String> {
        Ok(doc.text(text)?)
    }

    fn encode((doc, _): &mut (AutoCommit, ObjId)) -> Result<Option<Encoded>> {
        Ok(Some(Encoded { what: "save()", bytes: doc.save().len() }))
    }
}

/// Yrs (the Rust port of Yjs) with one text, one transaction per patch, as an editor sends them.
pub(crate) struct Yrs;

impl Editor for Yrs {
    const NAME: &'static str = "yrs";
    const HOW: &'static str =
        "one transact_mut per patch: Text::remove_range then Text::insert (OffsetKind::Utf16)";
    const DEFAULT_RUNS: usize = 3;
    type Doc = (Doc, TextRef);

    fn replay(edits: &[Edit<'_>]) -> Result<(Doc, TextRef)> {
        let mut options = Options::with_client_id(ClientID::new(1));
        // The default counts UTF-8 bytes; UTF-16 units equal code points in these traces.
        options.offset_kind = OffsetKind::Utf16;
        let doc = Doc::with_options(options);
        let text = doc.get_or_insert_text("text");
        for edit in edits {
            let pos = u32::try_from(edit.pos).context("position")?;
            let mut txn = doc.transact_mut();
            if edit.delete > 0 {
                text.remove_range(&mut txn, pos, u32::try_from(edit.delete).context("length")?);
            }
            if !edit.insert.is_empty() {
                text.insert(&mut txn, pos, edit.insert);
            }
        }
        Ok((doc, text))
    }

    fn text((doc, text): &(Doc, TextRef)) -> Result<String> {
        Ok(text.get_string(&doc.transact()))
    }

    fn encode((doc, _): &mut (Doc, TextRef)) -> Result<Option<Encoded>> {
        let bytes = doc.transact().encode_state_as_update_v1(&StateVector::default());
        Ok(Some(Encoded {
            what: "encode_state_as_update_v1(empty state vector)",
            bytes: bytes.len(),
        }))
    }
}
