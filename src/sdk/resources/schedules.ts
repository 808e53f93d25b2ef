/**
 * Schedules (reading needs `schedule.read`, changing `schedule.write` and `run.create` on
 * the workflow's team): a workflow started on a cron pattern in a time zone, or once at
 * `start_time`, with overlap and catch-up policies. Each fire time starts at most one run,
 * whatever the number of control planes.
 */
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { CreateScheduleRequest, ListScheduleFiresParams, ListSchedulesParams, Schedule, ScheduleFire, UpdateScheduleRequest } from "../types.js";

export class SchedulesResource {
  constructor(private readonly transport: RestTransport) {}

  /** Creates a schedule; resolves with it and its next fire times (`next_fire_times`). */
  async create(request: CreateScheduleRequest, options?: RequestOptions): Promise<Schedule> {
    return unwrap(await this.transport.call("post", "/v1/schedules", { body: request, options }), "createSchedule");
  }

  async get(id: string, options?: RequestOptions): Promise<Schedule> {
    return unwrap(await this.transport.call("get", "/v1/schedules/{id}", { path: { id }, options }), "getSchedule");
  }

  /** The schedules the caller may read (at most 1,000); `params.workflow_name` keeps one workflow's. */
  async list(params: ListSchedulesParams = {}, options?: RequestOptions): Promise<Schedule[]> {
    return unwrap(await this.transport.call("get", "/v1/schedules", { query: params, options }), "listSchedules");
  }

  /** Changes the fields given; `enabled: false` pauses, `true` resumes from now. */
  async update(id: string, request: UpdateScheduleRequest, options?: RequestOptions): Promise<Schedule> {
    return unwrap(await this.transport.call("patch", "/v1/schedules/{id}", { path: { id }, body: request, options }), "updateSchedule");
  }

  /** Deletes a schedule (the runs it started stay); resolves with it as it was. */
  async delete(id: string, options?: RequestOptions): Promise<Schedule> {
    return unwrap(await this.transport.call("delete", "/v1/schedules/{id}", { path: { id }, options }), "deleteSchedule");
  }

  /** What the newest fires did (at most 100): `started`, `skipped`, `queued`, `missed` or `failed`. */
  async listFires(scheduleId: string, params: ListScheduleFiresParams = {}, options?: RequestOptions): Promise<ScheduleFire[]> {
    return unwrap(await this.transport.call("get", "/v1/schedules/{schedule_id}/fires", { path: { schedule_id: scheduleId }, query: params, options }), "listScheduleFires");
  }
}
