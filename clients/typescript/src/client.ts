/**
 * A thin layer over the generated grpc-js clients of liveproc.v1: promises
 * for unary calls, async iterables for streams, and `LiveprocError` with
 * the gRPC code and the google.rpc details on failure.
 */
import { readFileSync } from "node:fs";

import { ChannelCredentials, Metadata, ServiceError, credentials, status } from "@grpc/grpc-js";

import { BadRequest, ErrorInfo, QuotaFailure, Status } from "./gen/google/rpc/status";
import {
  CreateStreamRequest,
  LiveProcessingClient,
  Stream,
  StreamEvent,
  Thumbnail,
  MotionClip,
} from "./gen/liveproc/v1/live_processing";
import {
  AuditEvent,
  ListAuditEventsResponse,
  Organization,
  OrganizationUsage,
  OrganizationsClient,
  Quotas,
} from "./gen/liveproc/v1/organizations";
import { ProcessingOptions } from "./gen/liveproc/v1/processing";

export interface FieldViolation {
  field: string;
  description: string;
}

/** A quota reached: `organizations/{id}/quotas/{name}`, "2 of 2 used". */
export interface QuotaViolation {
  subject: string;
  description: string;
}

/** A failed call: gRPC code, message and google.rpc details. */
export class LiveprocError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
    readonly fieldViolations: FieldViolation[] = [],
    readonly reason?: string,
    readonly errorMetadata: Record<string, string> = {},
    readonly quotaViolations: QuotaViolation[] = [],
  ) {
    super(`${status[code]}: ${details}`);
    this.name = "LiveprocError";
  }

  static from(error: ServiceError): LiveprocError {
    const violations: FieldViolation[] = [];
    let reason: string | undefined;
    let metadata: Record<string, string> = {};
    const quotas: QuotaViolation[] = [];
    const raw = error.metadata?.get("grpc-status-details-bin")?.[0];
    if (raw instanceof Buffer) {
      for (const detail of Status.decode(raw).details) {
        if (detail.typeUrl.endsWith("google.rpc.BadRequest")) {
          for (const v of BadRequest.decode(detail.value).fieldViolations) {
            violations.push({ field: v.field, description: v.description });
          }
        } else if (detail.typeUrl.endsWith("google.rpc.ErrorInfo")) {
          const info = ErrorInfo.decode(detail.value);
          reason = info.reason;
          metadata = info.metadata;
        } else if (detail.typeUrl.endsWith("google.rpc.QuotaFailure")) {
          for (const v of QuotaFailure.decode(detail.value).violations) {
            quotas.push({ subject: v.subject, description: v.description });
          }
        }
      }
    }
    return new LiveprocError(error.code, error.details, violations, reason, metadata, quotas);
  }
}

function unary<Req, Res>(
  call: (req: Req, md: Metadata, cb: (e: ServiceError | null, r: Res) => void) => unknown,
  request: Req,
  metadata: Metadata,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    call(request, metadata, (error, response) =>
      error ? reject(LiveprocError.from(error)) : resolve(response),
    ),
  );
}

async function* streamed<T>(stream: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    for await (const item of stream) {
      yield item;
    }
  } catch (error) {
    throw LiveprocError.from(error as ServiceError);
  }
}

/** Credentials for a server started with `--tls-cert`: TLS, trusting the
 * certificates of `caFile` (PEM) alone. Pass them as a client's `creds`. */
export function tlsCredentials(caFile: string): ChannelCredentials {
  return credentials.createSsl(readFileSync(caFile));
}

function auth(key: string): Metadata {
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${key}`);
  return metadata;
}

/** The operator's client: organizations, packages, API keys. */
export class AdminClient {
  private readonly stub: OrganizationsClient;
  private readonly md: Metadata;

  constructor(target: string, adminKey: string, creds: ChannelCredentials = credentials.createInsecure()) {
    this.stub = new OrganizationsClient(target, creds);
    this.md = auth(adminKey);
  }

  createOrganization(name: string, liveProcessing = false): Promise<Organization> {
    return unary(this.stub.createOrganization.bind(this.stub), { name, liveProcessing }, this.md);
  }

  setPackages(organizationId: string, liveProcessing: boolean): Promise<Organization> {
    return unary(this.stub.setPackages.bind(this.stub), { organizationId, liveProcessing }, this.md);
  }

  /** Replaces every quota of the organization (0 or absent: no limit). */
  setQuotas(organizationId: string, quotas: Partial<Quotas>): Promise<Organization> {
    const request = { organizationId, quotas: Quotas.fromPartial(quotas) };
    return unary(this.stub.setQuotas.bind(this.stub), request, this.md);
  }

  getUsage(organizationId: string): Promise<OrganizationUsage> {
    return unary(this.stub.getUsage.bind(this.stub), { organizationId }, this.md);
  }

  /** The audit log, newest first: every organization's, or one's. */
  listAuditEvents(organizationId = ""): AsyncGenerator<AuditEvent> {
    return auditEvents(this.stub, this.md, organizationId);
  }

  close(): void {
    this.stub.close();
  }
}

async function* auditEvents(
  stub: OrganizationsClient,
  md: Metadata,
  organizationId: string,
): AsyncGenerator<AuditEvent> {
  let pageToken = "";
  do {
    const request = { organizationId, pageSize: 100, pageToken };
    const page: ListAuditEventsResponse = await unary(stub.listAuditEvents.bind(stub), request, md);
    yield* page.events;
    pageToken = page.nextPageToken;
  } while (pageToken);
}

/** An organization's client: streams, processing and their outputs. */
export class Client {
  private readonly stub: LiveProcessingClient;
  private readonly organizations: OrganizationsClient;
  private readonly md: Metadata;

  constructor(target: string, apiKey: string, creds: ChannelCredentials = credentials.createInsecure()) {
    this.stub = new LiveProcessingClient(target, creds);
    this.organizations = new OrganizationsClient(target, creds);
    this.md = auth(apiKey);
  }

  /** A new publish key; the old one and its live publisher stop. */
  rotateStreamKey(streamId: string): Promise<Stream> {
    return unary(this.stub.rotateStreamKey.bind(this.stub), { streamId }, this.md);
  }

  /** The organization's quotas and what it uses of each. */
  getUsage(): Promise<OrganizationUsage> {
    return unary(this.organizations.getUsage.bind(this.organizations), { organizationId: "" }, this.md);
  }

  /** The organization's audit log, newest first. */
  listAuditEvents(): AsyncGenerator<AuditEvent> {
    return auditEvents(this.organizations, this.md, "");
  }

  createStream(request: Partial<CreateStreamRequest>): Promise<Stream> {
    return unary(this.stub.createStream.bind(this.stub), CreateStreamRequest.fromPartial(request), this.md);
  }

  getStream(streamId: string): Promise<Stream> {
    return unary(this.stub.getStream.bind(this.stub), { streamId }, this.md);
  }

  updateProcessing(streamId: string, processing: Partial<ProcessingOptions>): Promise<Stream> {
    const request = { streamId, processing: ProcessingOptions.fromPartial(processing) };
    return unary(this.stub.updateProcessing.bind(this.stub), request, this.md);
  }

  deleteStream(streamId: string): Promise<unknown> {
    return unary(this.stub.deleteStream.bind(this.stub), { streamId }, this.md);
  }

  /** The stream's state, then every change, until `close`d. */
  watchStream(streamId: string): AsyncGenerator<StreamEvent> {
    return streamed(this.stub.watchStream({ streamId }, this.md));
  }

  subscribeThumbnails(streamId: string, sendLatest = true): AsyncGenerator<Thumbnail> {
    return streamed(this.stub.subscribeThumbnails({ streamId, sendLatest }, this.md));
  }

  subscribeMotionClips(streamId: string, sendLatest = false): AsyncGenerator<MotionClip> {
    return streamed(this.stub.subscribeMotionClips({ streamId, sendLatest }, this.md));
  }

  getThumbnail(streamId: string): Promise<Thumbnail> {
    return unary(this.stub.getThumbnail.bind(this.stub), { streamId, at: undefined }, this.md);
  }

  close(): void {
    this.stub.close();
    this.organizations.close();
  }
}

