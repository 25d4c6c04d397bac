//! The span tree: the RGA's elements in text order, as runs in a B-tree.
//!
//! Leaves hold [`Span`]s in text order, tombstones included; every node caches the number of
//! visible characters below it, so a visible index is found in O(log n) by descending from the
//! root, and the visible index of a leaf's first character is the sum of its left siblings'
//! counts on the way up. An [`IdIndex`] finds the leaf of an id. Leaves are linked left to
//! right for walking the text in order.
//!
//! Nodes live in two arenas and refer to each other by number. Nothing is ever removed from a
//! tree: elements stay as tombstones, and spans only split, or rejoin within a leaf.
//!
//! The span of the last edit is remembered with its visible index (the [`Cursor`]), so
//! sequential typing and deleting find their place without descending the tree or scanning a
//! leaf.

use super::{Span, index::IdIndex};
use crate::Id;

/// Spans per leaf, and children per inner node. Tests use tiny nodes, so that even small
/// histories split leaves and grow the tree several levels deep.
#[cfg(not(test))]
const LEAF_CAP: usize = 32;
#[cfg(not(test))]
const INNER_CAP: usize = 16;
#[cfg(test)]
const LEAF_CAP: usize = 4;
#[cfg(test)]
const INNER_CAP: usize = 4;

/// No node: the parent of the root, or the next of the last leaf.
const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Leaf {
    spans: Vec<Span>,
    visible: usize,
    parent: u32,
    next: u32,
}

#[derive(Clone, Debug)]
struct Inner {
    /// Leaves when `leaf_children`, inner nodes otherwise.
    children: Vec<u32>,
    leaf_children: bool,
    visible: usize,
    parent: u32,
}

/// A place in the text: element `offset` of span `slot` of `leaf`. `slot` may equal the
/// leaf's span count (the end of the leaf) and `offset` the span's length (after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) leaf: u32,
    pub(super) slot: usize,
    pub(super) offset: usize,
}

/// A remembered place: span `slot` of `leaf`, with the visible index of the leaf's first
/// character (`leaf_start`) and of the span's (`slot_start`). `slot` may be the leaf's span
/// count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    leaf: u32,
    leaf_start: usize,
    slot: usize,
    slot_start: usize,
}

#[derive(Clone, Debug)]
pub(super) struct Tree {
    leaves: Vec<Leaf>,
    inners: Vec<Inner>,
    /// The root is leaf 0 until the first split, then an inner node.
    root: u32,
    root_is_leaf: bool,
    index: IdIndex,
    /// Where the last edit happened; kept valid through every edit.
    cursor: Cursor,
}

impl Default for Tree {
    fn default() -> Tree {
        Tree {
            leaves: vec![Leaf { spans: Vec::new(), visible: 0, parent: NONE, next: NONE }],
            inners: Vec::new(),
            root: 0,
            root_is_leaf: true,
            index: IdIndex::default(),
            cursor: Cursor { leaf: 0, leaf_start: 0, slot: 0, slot_start: 0 },
        }
    }
}

impl Tree {
    pub(super) fn span(&self, leaf: u32, slot: usize) -> &Span {
        &self.leaves[leaf as usize].spans[slot]
    }

    pub(super) fn get(&self, leaf: u32, slot: usize) -> Option<&Span> {
        self.leaves[leaf as usize].spans.get(slot)
    }

    pub(super) fn span_count(&self) -> usize {
        self.leaves.iter().map(|leaf| leaf.spans.len()).sum()
    }

    /// The spans in text order.
    pub(super) fn spans(&self) -> impl Iterator<Item = &Span> + '_ {
        // Leaf 0 is the leftmost leaf forever: splits add leaves to the right.
        let mut leaf = 0;
        std::iter::from_fn(move || {
            if leaf == NONE {
                return None;
            }
            let current = &self.leaves[leaf as usize];
            leaf = current.next;
            Some(current.spans.iter())
        })
        .flatten()
    }

    /// The start of the text.
    pub(super) fn start(&self) -> Pos {
        Pos { leaf: 0, slot: 0, offset: 0 }
    }

    /// The end of the text: after the last span of the rightmost leaf.
    pub(super) fn end(&self) -> Pos {
        let mut node = self.root;
        let mut is_leaf = self.root_is_leaf;
        while !is_leaf {
            let inner = &self.inners[node as usize];
            node = *inner.children.last().expect("inner nodes have children");
            is_leaf = inner.leaf_children;
        }
        Pos { leaf: node, slot: self.leaf(node).spans.len(), offset: 0 }
    }

    /// The position of the visible character at `index`, which must be below the visible
    /// length.
    pub(super) fn locate(&self, index: usize) -> Pos {
        let Cursor { leaf, leaf_start, slot, slot_start } = self.cursor;
        let (leaf, first, mut rest) =
            if (leaf_start..leaf_start + self.leaf(leaf).visible).contains(&index) {
                if index >= slot_start {
                    (leaf, slot, index - slot_start)
                } else {
                    (leaf, 0, index - leaf_start)
                }
            } else {
                let (leaf, leaf_start) = self.descend(index);
                (leaf, 0, index - leaf_start)
            };
        for (slot, span) in self.leaf(leaf).spans.iter().enumerate().skip(first) {
            let visible = span.visible_len();
            if rest < visible {
                return Pos { leaf, slot, offset: rest };
            }
            rest -= visible;
        }
        unreachable!("the visible counts of a leaf add up to its spans")
    }

    /// The leaf holding visible index `index`, and the index of its first character.
    fn descend(&self, mut index: usize) -> (u32, usize) {
        let mut start = 0;
        let mut node = self.root;
        let mut is_leaf = self.root_is_leaf;
        while !is_leaf {
            let inner = &self.inners[node as usize];
            let mut chosen = *inner.children.last().expect("inner nodes have children");
            for &child in &inner.children {
                let visible = self.visible_of(child, inner.leaf_children);
                if index < visible {
                    chosen = child;
                    break;
                }
                index -= visible;
                start += visible;
            }
            node = chosen;
            is_leaf = inner.leaf_children;
        }
        (node, start)
    }

    /// The position of element `id`, if present.
    pub(super) fn find(&self, id: Id) -> Option<Pos> {
        let leaf = self.index.leaf_of(id)?;
        let spans = &self.leaf(leaf).spans;
        let slot = spans.iter().position(|span| span.contains(id))?;
        Some(Pos { leaf, slot, offset: (id.seq - spans[slot].id.seq) as usize })
    }

    /// How many of the `len` consecutive ids from `id` on are present before the first
    /// missing one.
    pub(super) fn present_from(&self, id: Id, len: u64) -> u64 {
        self.index.present_from(id, len)
    }

    /// Whether any of the ids `start..start + len` is present.
    pub(super) fn overlaps(&self, start: Id, len: u64) -> bool {
        self.index.overlaps(start, len)
    }

    /// The visible index of the first character of `leaf`.
    pub(super) fn leaf_start(&self, leaf: u32) -> usize {
        if self.cursor.leaf == leaf {
            return self.cursor.leaf_start;
        }
        let mut start = 0;
        let (mut node, mut parent, mut is_leaf) = (leaf, self.leaf(leaf).parent, true);
        while parent != NONE {
            let inner = &self.inners[parent as usize];
            for &child in &inner.children {
                if child == node {
                    break;
                }
                start += self.visible_of(child, is_leaf);
            }
            (node, parent, is_leaf) = (parent, inner.parent, false);
        }
        start
    }

    /// The visible index of `pos`: of the character there, or of the next visible one.
    pub(super) fn visible_index(&self, pos: Pos) -> usize {
        let spans = &self.leaf(pos.leaf).spans;
        let before: usize = spans[..pos.slot].iter().map(Span::visible_len).sum();
        let within = match spans.get(pos.slot) {
            Some(span) if !span.deleted => pos.offset,
            _ => 0,
        };
        self.leaf_start(pos.leaf) + before + within
    }

    /// The position after `pos`'s span, following the leaf links; `None` at the end.
    pub(super) fn next_span(&self, pos: Pos) -> Option<Pos> {
        let (mut leaf, mut slot) = (pos.leaf, pos.slot + 1);
        while slot >= self.leaf(leaf).spans.len() {
            leaf = self.leaf(leaf).next;
            if leaf == NONE {
                return None;
            }
            slot = 0;
        }
        Some(Pos { leaf, slot, offset: 0 })
    }

    /// Puts the new elements `span` at `pos` (before the element there, at visible index
    /// `at`), joining the span before it where the run continues.
    pub(super) fn insert(&mut self, pos: Pos, at: usize, span: Span) {
        let start = self.leaf_start(pos.leaf);
        let Pos { leaf, slot, offset } = pos;
        let (leaf, slot) = if offset == 0 {
            (leaf, slot)
        } else if offset < self.span(leaf, slot).len {
            // Insert before the right part; the left part stays right before it.
            self.split(leaf, slot, offset)
        } else {
            (leaf, slot + 1)
        };
        let previous = slot.checked_sub(1).map(|slot| &mut self.leaves[leaf as usize].spans[slot]);
        let (target, slot, slot_start) = match previous {
            Some(previous) if previous.continues_with(&span) => {
                let slot_start = at - previous.visible_len();
                previous.len += span.len;
                (leaf, slot - 1, slot_start)
            }
            _ => {
                let (leaf, slot) = self.insert_span(leaf, slot, span);
                (leaf, slot, at)
            }
        };
        self.add_visible(target, span.visible_len() as isize);
        self.index.add(span.id, span.len as u64, target);
        self.remember(pos.leaf, start, target, slot, slot_start);
    }

    /// Points the cursor at span `slot` of `leaf`, whose first visible index is `slot_start`,
    /// after an edit at `edited`, whose first character has visible index `start`. An edit
    /// changes counts in `edited` and the leaves after it only, so `edited` keeps its start;
    /// a span that a split moved to a new leaf is not remembered.
    fn remember(&mut self, edited: u32, start: usize, leaf: u32, slot: usize, slot_start: usize) {
        self.cursor = if leaf == edited {
            Cursor { leaf, leaf_start: start, slot, slot_start }
        } else {
            Cursor { leaf: edited, leaf_start: start, slot: 0, slot_start: start }
        };
    }

    /// Tombstones `len` elements of the visible span at `pos` (at visible index `at`) from
    /// `pos.offset` on, splitting it as needed and rejoining neighbours that continue each
    /// other.
    pub(super) fn tombstone(&mut self, pos: Pos, at: usize, len: usize) {
        let start = self.leaf_start(pos.leaf);
        let Pos { mut leaf, mut slot, offset } = pos;
        debug_assert!(!self.span(leaf, slot).deleted);
        if self.shift_into_neighbour(pos, len) {
            self.add_visible(leaf, -(len as isize));
            // The span at `slot` is still visible and still starts where it did.
            self.remember(leaf, start, leaf, slot, at - offset);
            return;
        }
        if offset > 0 {
            (leaf, slot) = self.split(leaf, slot, offset);
        }
        if len < self.span(leaf, slot).len {
            let (right_leaf, right_slot) = self.split(leaf, slot, len);
            (leaf, slot) = (right_leaf, right_slot - 1);
        }
        self.leaves[leaf as usize].spans[slot].deleted = true;
        self.add_visible(leaf, -(len as isize));
        let slot = self.rejoin(leaf, slot);
        // The tombstones hold no visible characters: what follows them starts at `at`.
        self.remember(pos.leaf, start, leaf, slot, at);
    }

    /// Tombstones the `len` elements at `pos` by moving them into the tombstoned run next to
    /// them that they continue, if there is one in the leaf: backspacing and deleting forward
    /// then cost no split. Visible counts are the caller's to update.
    fn shift_into_neighbour(&mut self, pos: Pos, len: usize) -> bool {
        let Pos { leaf, slot, offset } = pos;
        let spans = &mut self.leaves[leaf as usize].spans;
        let span = spans[slot];
        if offset > 0 && offset + len == span.len {
            // The tail goes: it joins a tombstoned run that continues it.
            let Some(next) = spans.get_mut(slot + 1) else { return false };
            if !(next.deleted && span.continues_with(&Span { deleted: false, ..*next })) {
                return false;
            }
            next.id = span.id.plus(offset);
            next.after = Some(span.id.plus(offset - 1));
            next.len += len;
            spans[slot].len = offset;
            true
        } else if offset == 0 && len < span.len && slot > 0 {
            // The head goes: it joins a tombstoned run that it continues.
            let previous = &mut spans[slot - 1];
            if !(previous.deleted && previous.continues_with(&Span { deleted: true, ..span })) {
                return false;
            }
            previous.len += len;
            spans[slot] = Span {
                id: span.id.plus(len),
                after: Some(span.id.plus(len - 1)),
                len: span.len - len,
                deleted: false,
            };
            true
        } else {
            false
        }
    }

    /// Joins the span at `slot` with its neighbours in the leaf where they continue each
    /// other. Returns the slot of the joined span.
    fn rejoin(&mut self, leaf: u32, slot: usize) -> usize {
        let spans = &mut self.leaves[leaf as usize].spans;
        if slot + 1 < spans.len() && spans[slot].continues_with(&spans[slot + 1]) {
            spans[slot].len += spans[slot + 1].len;
            spans.remove(slot + 1);
        }
        if slot > 0 && spans[slot - 1].continues_with(&spans[slot]) {
            spans[slot - 1].len += spans[slot].len;
            spans.remove(slot);
            return slot - 1;
        }
        slot
    }

    /// Cuts the span at `slot` before element `offset` (0 < offset < len). Returns where the
    /// right part went; the left part is right before it, in the same leaf.
    fn split(&mut self, leaf: u32, slot: usize, offset: usize) -> (u32, usize) {
        let span = &mut self.leaves[leaf as usize].spans[slot];
        let right = Span {
            id: span.id.plus(offset),
            after: Some(span.id.plus(offset - 1)),
            len: span.len - offset,
            deleted: span.deleted,
        };
        span.len = offset;
        let (right_leaf, right_slot) = self.insert_span(leaf, slot + 1, right);
        if right_leaf != leaf {
            let visible = right.visible_len() as isize;
            self.add_visible(leaf, -visible);
            self.add_visible(right_leaf, visible);
            self.index.relocate(right.id, right.len as u64, right_leaf);
        }
        (right_leaf, right_slot)
    }

    /// Inserts `span` at `slot` of `leaf`, splitting the leaf when full. Visible counts and
    /// the index entries of the new span are the caller's to update; the spans a split moves
    /// are re-pointed here. Returns where the span went.
    fn insert_span(&mut self, leaf: u32, slot: usize, span: Span) -> (u32, usize) {
        if self.leaf(leaf).spans.len() < LEAF_CAP {
            self.leaves[leaf as usize].spans.insert(slot, span);
            return (leaf, slot);
        }
        let half = LEAF_CAP / 2;
        let right = self.split_leaf(leaf, half);
        if slot <= half {
            self.leaves[leaf as usize].spans.insert(slot, span);
            (leaf, slot)
        } else {
            self.leaves[right as usize].spans.insert(slot - half, span);
            (right, slot - half)
        }
    }

    /// Moves the spans of `leaf` from `at` on to a new leaf right after it. Returns the new
    /// leaf.
    fn split_leaf(&mut self, leaf: u32, at: usize) -> u32 {
        let new = u32::try_from(self.leaves.len()).expect("fewer than 2^32 leaves");
        let old = &mut self.leaves[leaf as usize];
        let mut moved = Vec::with_capacity(LEAF_CAP);
        moved.extend(old.spans.drain(at..));
        let visible: usize = moved.iter().map(Span::visible_len).sum();
        old.visible -= visible;
        let (parent, next) = (old.parent, old.next);
        old.next = new;
        for span in &moved {
            self.index.relocate(span.id, span.len as u64, new);
        }
        self.leaves.push(Leaf { spans: moved, visible, parent, next });
        self.attach(leaf, new, true);
        new
    }

    /// Links `new` (a leaf or inner node, per `is_leaf`) into the tree right after its
    /// sibling `node`, splitting ancestors as they fill.
    fn attach(&mut self, node: u32, new: u32, is_leaf: bool) {
        let parent = self.parent_of(node, is_leaf);
        if parent == NONE {
            let root = self.new_inner(vec![node, new], is_leaf, NONE);
            self.set_parent(node, is_leaf, root);
            self.set_parent(new, is_leaf, root);
            self.root = root;
            self.root_is_leaf = false;
            return;
        }
        let inner = &mut self.inners[parent as usize];
        let at = inner.children.iter().position(|&child| child == node).expect("child of parent");
        inner.children.insert(at + 1, new);
        self.set_parent(new, is_leaf, parent);
        if self.inners[parent as usize].children.len() <= INNER_CAP {
            return;
        }
        let moved: Vec<u32> = self.inners[parent as usize].children.split_off(INNER_CAP / 2);
        let moved_visible: usize = moved.iter().map(|&child| self.visible_of(child, is_leaf)).sum();
        self.inners[parent as usize].visible -= moved_visible;
        let grandparent = self.inners[parent as usize].parent;
        let sibling = self.new_inner(moved, is_leaf, grandparent);
        self.inners[sibling as usize].visible = moved_visible;
        for child in self.inners[sibling as usize].children.clone() {
            self.set_parent(child, is_leaf, sibling);
        }
        self.attach(parent, sibling, false);
    }

    fn new_inner(&mut self, children: Vec<u32>, leaf_children: bool, parent: u32) -> u32 {
        let id = u32::try_from(self.inners.len()).expect("fewer than 2^32 inner nodes");
        let visible = children.iter().map(|&child| self.visible_of(child, leaf_children)).sum();
        let mut all = Vec::with_capacity(INNER_CAP + 1);
        all.extend(children);
        self.inners.push(Inner { children: all, leaf_children, visible, parent });
        id
    }

    /// Adds `delta` to the visible counts of `leaf` and its ancestors.
    fn add_visible(&mut self, leaf: u32, delta: isize) {
        let node = &mut self.leaves[leaf as usize];
        node.visible = node.visible.wrapping_add_signed(delta);
        let mut parent = node.parent;
        while parent != NONE {
            let inner = &mut self.inners[parent as usize];
            inner.visible = inner.visible.wrapping_add_signed(delta);
            parent = inner.parent;
        }
    }

    fn leaf(&self, leaf: u32) -> &Leaf {
        &self.leaves[leaf as usize]
    }

    fn visible_of(&self, node: u32, is_leaf: bool) -> usize {
        if is_leaf {
            self.leaves[node as usize].visible
        } else {
            self.inners[node as usize].visible
        }
    }

    fn parent_of(&self, node: u32, is_leaf: bool) -> u32 {
        if is_leaf { self.leaves[node as usize].parent } else { self.inners[node as usize].parent }
    }

    fn set_parent(&mut self, node: u32, is_leaf: bool, parent: u32) {
        if is_leaf {
            self.leaves[node as usize].parent = parent;
        } else {
            self.inners[node as usize].parent = parent;
        }
    }

    /// Panics unless every cached count, link and index entry agrees with the spans.
    #[cfg(test)]
    pub(super) fn check(&self) {
        // Walk the tree from the root, checking parents and counts, collecting leaves in order.
        let mut order = Vec::new();
        self.check_node(self.root, self.root_is_leaf, NONE, &mut order);
        let mut linked = Vec::new();
        let mut leaf = 0;
        while leaf != NONE {
            linked.push(leaf);
            leaf = self.leaf(leaf).next;
        }
        assert_eq!(order, linked, "leaf links disagree with the tree order");
        assert_eq!(order.len(), self.leaves.len(), "a leaf is not in the tree");
        let Cursor { leaf, leaf_start, slot, slot_start } = self.cursor;
        let walked = Tree { cursor: Cursor { leaf: NONE, ..self.cursor }, ..self.clone() };
        assert_eq!(walked.leaf_start(leaf), leaf_start, "stale cursor leaf");
        let spans = &self.leaf(leaf).spans;
        assert!(slot <= spans.len(), "cursor past the leaf");
        let before: usize = spans[..slot].iter().map(Span::visible_len).sum();
        assert_eq!(leaf_start + before, slot_start, "stale cursor slot");
        for &leaf in &order {
            let spans = &self.leaf(leaf).spans;
            assert!(!spans.is_empty() || self.root_is_leaf, "empty leaf {leaf}");
            assert!(spans.len() <= LEAF_CAP, "overfull leaf {leaf}");
            for span in spans {
                assert!(span.len > 0, "empty span");
                for seq in span.id.seq..span.id.seq + span.len as u64 {
                    let id = Id::new(span.id.node, seq);
                    assert_eq!(self.index.leaf_of(id), Some(leaf), "index misplaces {id}");
                }
            }
        }
    }

    /// Checks the subtree at `node` and returns its visible count.
    #[cfg(test)]
    fn check_node(&self, node: u32, is_leaf: bool, parent: u32, order: &mut Vec<u32>) -> usize {
        assert_eq!(self.parent_of(node, is_leaf), parent, "wrong parent of {node}");
        let visible = if is_leaf {
            order.push(node);
            self.leaf(node).spans.iter().map(Span::visible_len).sum()
        } else {
            let inner = &self.inners[node as usize];
            assert!(inner.children.len() <= INNER_CAP, "overfull inner node {node}");
            inner
                .children
                .iter()
                .map(|&child| self.check_node(child, inner.leaf_children, node, order))
                .sum()
        };
        assert_eq!(self.visible_of(node, is_leaf), visible, "wrong count in {node}");
        visible
    }
}
