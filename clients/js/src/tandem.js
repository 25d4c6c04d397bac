// The Tandem client: import this module to edit a Tandem document from a browser or Node.
//
//   import { TandemClient, bindTextarea } from '/js/tandem.js';
//
// TandemClient keeps one document in sync (see client.js); bindTextarea ties one to a
// <textarea> (textarea.js). The protocol's transform (ot.js), the UTF-16 and code point
// conversions (text.js), the sans-IO session (session.js) and undo (undo.js) are exported for
// binding other editor components. No dependencies, no build step.

export { TandemClient, isDocumentId } from './client.js';
export { bindTextarea, colorFor, colorOf } from './textarea.js';
export { Session, SessionError } from './session.js';
export { transform } from './ot.js';
export { UndoHistory, invert } from './undo.js';
export {
  codePointLength,
  diff,
  fromLineColumn,
  isBoundary,
  lineColumn,
  toCodePoints,
  toUtf16,
  wellFormed,
} from './text.js';
