"""One training epoch and one evaluation pass."""
import math
import time

import numpy as np
import torch
from tqdm import tqdm


def train_one_epoch(model, optimizer, scheduler, loader, device, epoch, scaler=None, world=1,
                    show_progress=True, max_grad_norm=None):
    """Returns {"loss", "images_per_s", "seconds"} averaged over the epoch (this process)."""
    model.train()
    seen, loss_sum, steps, t0 = 0, 0.0, 0, time.perf_counter()
    bar = tqdm(loader, desc="epoch {}".format(epoch), leave=False, dynamic_ncols=True,
               disable=not show_progress or None)
    for images, targets in bar:
        # channels_last is applied to the model's weights: torchvision batches these CHW images itself, and the
        # convolutions then run NHWC.
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for t in targets]
        with torch.autocast(device_type=device.type, enabled=scaler is not None):
            losses = model(images, targets)
            loss = sum(losses.values())
        if not math.isfinite(loss.item()):
            raise FloatingPointError("loss is {} at epoch {} step {} ({}): lower --lr".format(
                loss.item(), epoch, steps, {k: round(v.item(), 4) for k, v in losses.items()}))
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if max_grad_norm:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
        scheduler.step()
        seen += len(images) * world
        steps += 1
        loss_sum += loss.item()
        elapsed = time.perf_counter() - t0
        bar.set_postfix(loss="{:.3f}".format(loss_sum / steps), img_s="{:.1f}".format(seen / elapsed),
                        lr="{:.4f}".format(optimizer.param_groups[0]["lr"]))
    bar.close()
    seconds = time.perf_counter() - t0
    return {"loss": loss_sum / max(steps, 1), "images_per_s": seen / seconds, "seconds": seconds}


@torch.no_grad()
def predict(model, loader, device, show_progress=True):
    """Run the torchvision model's own eval path; returns (ground truths, detections) as numpy dicts."""
    model.eval()
    gts, dts = [], []
    for images, targets in tqdm(loader, desc="eval", leave=False, disable=not show_progress or None):
        outputs = model([im.to(device) for im in images])
        for t, o in zip(targets, outputs):
            gts.append({"boxes": t["boxes"].numpy(), "labels": t["labels"].numpy()})
            dts.append({k: o[k].float().cpu().numpy() for k in ("boxes", "labels", "scores")})
    return gts, dts


def evaluate(model, loader, device, num_classes, show_progress=True):
    from .coco_eval import coco_map
    gts, dts = predict(model, loader, device, show_progress)
    out = coco_map(gts, dts, num_classes)
    out["detections_per_image"] = float(np.mean([len(d["boxes"]) for d in dts]))
    return out
