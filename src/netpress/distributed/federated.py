"""Federated fine-tuning on Flower with compressed client updates, simulated in-process.

The clients and the server are real Flower apps (``flwr.clientapp.ClientApp`` with a
``train`` handler, ``flwr.serverapp.ServerApp`` whose main runs a FedAvg strategy). Each
client holds a non-identical shard of the training data (a Dirichlet class split), trains
the global model for ``local_epochs`` with netpress's loop and sends back its update
compressed as ``updates.compress_update`` says (top-k with error feedback, then 8/4-bit
codes), residuals kept in the client's Flower ``Context.state``. The server decodes each
update, averages them weighted by examples (FedAvg) and adds the mean to the global model.

Flower's own simulation engine needs Ray, which is not installed here (``flwr[simulation]``
pins ray 2.55.1); ``local_grid`` is a Flower ``Grid`` that delivers each message by calling
the ClientApp in this process, one node after the other — the same apps run unchanged
under ``flwr run`` with a SuperLink.

Example:
    >>> res = run_federated(model, task, FedConfig(clients=8, rounds=5, bits=4, ratio=0.1))  # doctest: +SKIP
    >>> res.bytes_up, res.val_accuracy[-1]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..config import Config
from ..context import Context as NpContext
from ..errors import ConfigError
from .updates import compress_update, decode_update, dirichlet_split, payload_bytes


@dataclass(frozen=True)
class FedConfig(Config):
    """A federated fine-tuning run.

    Example:
        >>> FedConfig(bits=4, ratio=0.1).clients
        8
    """

    clients: int = 8  # simulated clients, each with its own shard
    rounds: int = 5  # FedAvg rounds
    local_epochs: int = 1  # epochs each client trains per round
    lr: float = 1e-3  # clients' Adam learning rate
    alpha: float = 0.5  # Dirichlet concentration of the class split (small: less identical)
    bits: int = 32  # update values: 32 (fp32), 8 or 4 bits
    ratio: float = 1.0  # top-k: share of each tensor's update entries sent (error feedback)
    batch_size: int = 64  # clients' batch size
    seed: int = 0

    def validate(self) -> None:
        if self.clients < 2 or self.rounds < 1 or self.local_epochs < 1:
            raise ConfigError("clients must be >= 2, rounds and local_epochs >= 1")
        if self.bits not in (4, 8, 32):
            raise ConfigError(f"bits must be 4, 8 or 32, got {self.bits}")
        if not 0 < self.ratio <= 1 or self.alpha <= 0 or self.lr <= 0:
            raise ConfigError("ratio must be in (0, 1]; alpha and lr > 0")


@dataclass
class FedResult:
    """The global model after the last round and what the rounds cost.

    Example:
        >>> FedResult(nn.Linear(1, 1)).bytes_up
        0
    """

    model: nn.Module
    val_accuracy: list[float] = field(default_factory=list)  # after each round
    bytes_up: int = 0  # numpy payload of every client update, all rounds
    record_bytes_up: int = 0  # the same updates as Flower ArrayRecords count them
    dense_bytes_up: int = 0  # what fp32 updates of the same rounds would have been
    shard_sizes: list[int] = field(default_factory=list)
    seconds: float = 0.0


def local_grid(client_app, contexts: dict):
    """A Flower ``Grid`` that delivers every message to ``client_app`` in this process,
    with the node's Flower ``Context`` from ``contexts`` (node id → Context)."""
    from flwr.serverapp import Grid

    class LocalGrid(_LocalGrid, Grid):
        pass

    return LocalGrid(client_app, contexts)


class _LocalGrid:
    """The Grid methods of ``local_grid`` (Flower's Grid is imported only when used)."""

    def __init__(self, client_app, contexts: dict) -> None:
        self.client_app, self.contexts = client_app, contexts
        self._replies: dict[str, object] = {}
        self._run = None

    def set_run(self, run) -> None:
        self._run = run

    @property
    def run(self):
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        from flwr.app import Message

        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages) -> Iterable[str]:
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            node = msg.metadata.dst_node_id
            with _identity(node):  # the process is this node while its ClientApp runs
                self._replies[msg.metadata.message_id] = self.client_app(msg, self.contexts[node])
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids) -> Iterable:
        return [self._replies.pop(i) for i in list(message_ids) if i in self._replies]

    def send_and_receive(self, messages, *, timeout=None) -> Iterable:
        return self.pull_messages(self.push_messages(messages))


SERVER_NODE = 1 << 40  # the server's node id, apart from the clients' 0..N-1


class _identity:
    """Flower's per-process ``TaskIdentity`` (run, task, node) for the simulated node."""

    def __init__(self, node: int) -> None:
        self.node = node

    def __enter__(self):
        from flwr.supercore.task_identity import TaskIdentity

        self.saved = (TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id)
        TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, self.node

    def __exit__(self, *exc) -> None:
        from flwr.supercore.task_identity import TaskIdentity

        TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = self.saved


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run_federated(model: nn.Module, task, cfg: FedConfig, threads: int = 2) -> FedResult:
    """FedAvg over ``cfg.clients`` simulated clients, starting from ``model`` (not changed).

    Example:
        >>> from netpress.data import load_split
        >>> res = run_federated(model, load_split("digits"), FedConfig(clients=3, rounds=2))  # doctest: +SKIP
    """
    import logging
    import os

    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # nothing leaves the machine
    from flwr.supercore import logger as _flwr_logger  # noqa: F401  (sets its level on import)

    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    flwr_log.setLevel(logging.WARNING)  # Flower logs every round; netpress reports them
    try:
        return _run(model, task, cfg, threads)
    finally:
        flwr_log.setLevel(level)


def _run(model: nn.Module, task, cfg: FedConfig, threads: int) -> FedResult:
    from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import FedAvg

    t0 = time.perf_counter()
    ctx = NpContext(task, seed=cfg.seed, threads=threads, batch_size=cfg.batch_size)
    x, y = ctx.task.part("train")
    shards = dirichlet_split(y, cfg.clients, cfg.alpha, cfg.seed)
    if any(len(s) == 0 for s in shards):
        raise ConfigError(f"a client got no data with alpha={cfg.alpha}; raise alpha or use "
                          "fewer clients")
    import copy

    from ..batches import take

    local = copy.deepcopy(model)
    shapes = {k: tuple(v.shape) for k, v in local.state_dict().items()}
    result = FedResult(copy.deepcopy(model), shard_sizes=[len(s) for s in shards])
    client_app = ClientApp()
    calls: dict[int, int] = {}

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        node = context.node_id
        calls[node] = calls.get(node, 0) + 1  # this client's round
        glob = msg.content["arrays"].to_torch_state_dict()
        local.load_state_dict(glob)
        idx = shards[node]
        cctx = dataclasses.replace(ctx, task=ctx.task.with_part("train", take(x, idx), y[idx]),
                                   seed=cfg.seed * 1000 + calls[node] * 37 + node,
                                   comm_log=[])
        cctx.finetune(local, cfg.local_epochs, lr=cfg.lr, description=f"client {node}")
        update = {k: local.state_dict()[k].float() - glob[k].float() for k in shapes}
        res_rec = context.state.get("residual")
        residual = ({k: torch.from_numpy(a.numpy().copy()) for k, a in res_rec.items()}
                    if res_rec is not None else {})
        arrays, new_res = compress_update(update, residual, cfg.ratio, cfg.bits)
        if new_res:
            context.state["residual"] = ArrayRecord.from_array_dict(
                {k: Array.from_numpy_ndarray(v.numpy()) for k, v in new_res.items()})
        record = ArrayRecord.from_array_dict({k: Array.from_numpy_ndarray(v)
                                              for k, v in arrays.items()})
        result.bytes_up += payload_bytes(arrays)
        result.record_bytes_up += record.count_bytes()
        result.dense_bytes_up += 4 * sum(int(np.prod(s)) for s in shapes.values())
        content = RecordDict({"arrays": record,
                              "metrics": MetricRecord({"num-examples": len(idx)})})
        return Message(content=content, reply_to=msg)

    class CompressedFedAvg(FedAvg):
        """FedAvg over decoded updates: global + Σ n_i Δ_i / Σ n_i."""

        def configure_train(self, server_round, arrays, config, grid):
            self.current = arrays.to_torch_state_dict()
            return super().configure_train(server_round, arrays, config, grid)

        def aggregate_train(self, server_round, replies):
            replies = [r for r in replies if not r.has_error()]
            total = sum(int(r.content["metrics"]["num-examples"]) for r in replies)
            mean = {k: torch.zeros(s) for k, s in shapes.items()}
            for r in replies:
                n = int(r.content["metrics"]["num-examples"])
                dec = decode_update({k: a.numpy() for k, a in r.content["arrays"].items()}, shapes)
                for k in mean:
                    mean[k] += dec[k] * (n / total)
            new = {k: (self.current[k].float() + mean[k]).to(self.current[k].dtype)
                   for k in shapes}
            return ArrayRecord(new), MetricRecord({"clients": len(replies)})

    def central(server_round: int, arrays: ArrayRecord):
        if server_round == 0:
            return None
        result.model.load_state_dict(arrays.to_torch_state_dict())
        result.val_accuracy.append(ctx.evaluate(result.model))
        return MetricRecord({"val_accuracy": result.val_accuracy[-1]})

    server_app = ServerApp()

    @server_app.main()
    def main(grid, context: Context) -> None:
        strategy = CompressedFedAvg(fraction_train=1.0, fraction_evaluate=0.0,
                                    min_train_nodes=cfg.clients, min_available_nodes=cfg.clients)
        strategy.start(grid=grid, initial_arrays=ArrayRecord(_state(model)),
                       num_rounds=cfg.rounds, train_config=ConfigRecord({"lr": cfg.lr}),
                       evaluate_fn=central)

    contexts = {i: Context(run_id=1, node_id=i, node_config={}, state=RecordDict(),
                           run_config={}) for i in range(cfg.clients)}
    grid = local_grid(client_app, contexts)
    with _identity(SERVER_NODE):
        server_app(grid, Context(run_id=1, node_id=SERVER_NODE, node_config={},
                                 state=RecordDict(), run_config={}))
    result.model.eval()
    result.seconds = time.perf_counter() - t0
    return result
