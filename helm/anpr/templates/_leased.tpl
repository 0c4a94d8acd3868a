{{/*
A Deployment whose replicas share the cameras through leases in NATS KV (anpr-ingest,
anpr-analytic): each pod is its own lease holder, named by ANPR_INSTANCE = the pod name, so any
replica count works and `kubectl scale` is fine. Takes a dict: root, component, values, binary,
env (a list of env entries).
*/}}
{{- define "anpr.leasedDeployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $name := include "anpr.componentName" (list $root .component) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "anpr.componentLabels" (list $root .component) | nindent 4 }}
spec:
  replicas: {{ $v.replicas }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # The new pod joins before an old one leaves and releases its cameras, so the others keep
      # the capacity to take them over.
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "anpr.selectorLabels" (list $root .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "anpr.componentLabels" (list $root .component) | nindent 8 }}
      {{- with include "anpr.podAnnotations" (list $root $v) }}
      annotations:
        {{- . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "anpr.podCommon" $root | nindent 6 }}
      {{- with $v.terminationGracePeriodSeconds }}
      terminationGracePeriodSeconds: {{ . }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "anpr.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: [{{ printf "/usr/local/bin/%s" .binary | quote }}]
          env:
            # The lease holder's name: unique per pod, and the pod to look at in camera statuses.
            - name: ANPR_INSTANCE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: ANPR_LEASE_TTL_MS
              value: {{ int64 $v.leaseTtlMs | quote }}
            - name: ANPR_CONFIG_URL
              value: {{ include "anpr.configUrl" $root | quote }}
            {{- include "anpr.commonEnv" $root | nindent 12 }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: 9090
              protocol: TCP
          {{- include "anpr.httpProbes" $root | nindent 10 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "anpr.volumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "anpr.volumes" $root | nindent 8 }}
      {{- include "anpr.scheduling" $v | nindent 6 }}
{{- end -}}
