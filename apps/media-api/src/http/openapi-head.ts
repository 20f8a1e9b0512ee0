import type { OpenAPIObject } from '@nestjs/swagger';

type Parameter = { name?: string; in?: string };
type Response = { description?: string; headers?: unknown; content?: unknown };
type Operation = { summary?: string; parameters?: Parameter[]; responses?: Record<string, Response>; [key: string]: unknown };

/** Statuses only a `Range` can give: HEAD ignores ranges (RFC 9110 §14.2; byte-ranges.ts). */
const RANGE_STATUSES = new Set(['206', '416']);
const RANGE_HEADERS = new Set(['range', 'if-range']);

/**
 * Documents HEAD wherever the router answers it: on every GET route, whether Fastify added the
 * HEAD route itself or a controller declared it (`GET /v1/media/{id}`, which answers it without
 * opening the object). A HEAD is its GET without a body: the same parameters (but `Range` and
 * `If-Range`), security and headers, the same statuses (but 206 and 416), and no content.
 * Call it after the error responses are added, so that HEAD lists them too.
 */
export function withHeadOperations(document: OpenAPIObject): OpenAPIObject {
  for (const item of Object.values(document.paths) as Array<Record<string, Operation | undefined>>) {
    const get = item['get'];
    if (!get || item['head']) continue;
    const responses: Record<string, Response> = {};
    for (const [status, response] of Object.entries(get.responses ?? {})) {
      if (RANGE_STATUSES.has(status)) continue;
      const { content: _body, ...rest } = response;
      responses[status] = rest;
    }
    item['head'] = {
      ...get,
      ...(get.operationId ? { operationId: `${String(get.operationId)}_head` } : {}),
      summary: get.summary ? `Headers only: ${get.summary}` : 'The headers of the GET, without its body',
      ...(get.parameters ? { parameters: get.parameters.filter((p) => !(p.in === 'header' && RANGE_HEADERS.has(String(p.name).toLowerCase()))) } : {}),
      responses,
    };
  }
  return document;
}
