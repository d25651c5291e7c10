"""Storage: the model store, the only code that reads or writes model artifacts, and the
objects of data buckets (uploaded files and what is made from them).

The model store's layout, the same in a local folder and under gs://bucket/prefix:

    <model>/current.json               {"version", "sha256", "metadata_sha256"}: the live version
    <model>/<version>/model.joblib     the scikit-learn Pipeline
    <model>/<version>/metadata.json    schema, metrics, versions, sha256, serving form

An artifact is unpickled only after its sha256 matches current.json, and only when it was saved
by the scikit-learn version this process runs; the serving form in metadata.json is used only
when the metadata's sha256 matches too. `ModelStore.get` loads each model once per process,
however many threads ask at once, then checks current.json every refresh interval and swaps in
a new version while the old one keeps serving.

`ObjectStore` streams reads and writes of data bucket objects and publishes them create-only.
Every storage call is bounded by the storage timeout and retried only where a retry is safe. A
model load (or a refresh check) keeps one budget for all its reads, the client's making
included: a `Deadline` set when it starts, of which each read gets what is left.
Every storage user sees the same three outcomes besides success:

    shared.errors.StorageUnavailable   storage failed or did not answer in time (503):
                                       retry the whole request or event later; it
                                       says which storage, its `where` what call and key
    ObjectMissing                      no such object (or no longer that generation)
    PreconditionFailed                 a generation precondition failed: a create-if-absent
                                       found an object, or another writer moved it first

Loading a model turns ObjectMissing into ModelNotFound; publishing turns PreconditionFailed
into PublishConflict. The Cloud Storage client library is imported only when a gs:// model
store or an ObjectStore is first used.
"""

from __future__ import annotations

from shared.store._backends import Backend, GcsBucket, LocalFolder, open_backend
from shared.store._deadline import Deadline
from shared.store._errors import ObjectMissing, PreconditionFailed
from shared.store._loading import LoadedModel, load_current, read_pointer
from shared.store._model_store import FAILURE_BACKOFF_SECONDS, ModelStore
from shared.store._objects import ObjectInfo, ObjectStore
from shared.store._publishing import live_pointer, publish, set_current, upload_version
from shared.store._streams import WRITE_CHUNK_BYTES, StreamedUpload

__all__ = [
    "FAILURE_BACKOFF_SECONDS",
    "WRITE_CHUNK_BYTES",
    "Backend",
    "Deadline",
    "GcsBucket",
    "LoadedModel",
    "LocalFolder",
    "ModelStore",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectStore",
    "PreconditionFailed",
    "StreamedUpload",
    "live_pointer",
    "load_current",
    "open_backend",
    "publish",
    "read_pointer",
    "set_current",
    "upload_version",
]
